"""API throttles: the platform's one rate-limiting mechanism (core.ratelimit) for DRF views.

DRF answers a refused request with `Throttled`, which the problem handler renders as
problem+json `throttled` with `Retry-After`.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.ratelimit import ThrottledError, rate_limit_hit


class ScopeThrottle(BaseThrottle):
    """Count each request against the RATE_LIMITS scope `scope` (per client)."""

    scope = ""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            rate_limit_hit(request, scope=self.scope)
        except ThrottledError as error:
            self._wait = error.retry_after
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


class SignupThrottle(ScopeThrottle):
    scope = "signup"
