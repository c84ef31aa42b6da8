"""One way to limit how often something may be done: signup (page and API), sign-in,
invitations, password reset, and later API keys.

Counting is django-ratelimit's `get_usage` (fixed windows in Redis, through the default
cache, which is namespaced per tenant, so each workspace and the root site count apart).
The client is `core.http.client_ip` (trusted-proxy aware). Limits are named scopes in the
RATE_LIMITS setting, each with one or more keys:

    RATE_LIMITS = {"password_reset": {"address": "5/h", "client": "20/h"}}

Over a limit, `rate_limit_hit` raises `ThrottledError` with the seconds to wait: pages
answer the 429 page, the API problem+json `throttled`; both send `Retry-After`.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]

from core.errors import AppError

CLIENT = "client"


class ThrottledError(AppError):
    code, status, title = "throttled", 429, "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


def rate_limit_hit(request: HttpRequest, *, scope: str, **keys: str) -> None:
    """Count one attempt against every limit of `scope`.

    `keys` name what is counted besides the client (`address=...`, `actor=...`); values
    are hashed before they reach Redis. Every attempt counts against every limit,
    whichever one refuses it.

    Raises:
        ThrottledError: a limit of the scope is exceeded; `retry_after` seconds to wait.
    """
    waits = []
    for name, rate in settings.RATE_LIMITS[scope].items():
        if name == CLIENT:
            key: object = "ip"
        else:
            digest = hashlib.sha256(keys[name].encode()).hexdigest()
            key = lambda group, request, digest=digest: digest  # noqa: E731
        usage = get_usage(request, group=f"{scope}.{name}", key=key, rate=rate, increment=True)
        if usage and usage["should_limit"]:
            waits.append(max(1, int(usage["time_left"])))
    if waits:
        wait = max(waits)
        raise ThrottledError(
            f"Too many attempts; try again in {_in_words(wait)}.", retry_after=wait
        )


def _in_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"
