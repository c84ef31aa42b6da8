"""How often one may ask for a reset link: per e-mail address and per client, per workspace.

Counting is django-ratelimit's (fixed windows in the default cache, which is namespaced per
tenant, so each workspace and the root host count apart). The client is
`lockout.client_ip` (RATELIMIT_IP_META_KEY): X-Forwarded-For counts only behind
TRUSTED_PROXY_COUNT proxies. The address is normalized first, so `A@x.test` and `a@x.test`
share a count; the cache key is a hash, so the address is not stored in Redis.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]

from shared_apps.accounts.rules import email_normalize

GROUP_ADDRESS = "accounts.password_reset.address"
GROUP_CLIENT = "accounts.password_reset.client"


def password_reset_wait(request: HttpRequest, *, email: str) -> int | None:
    """Count this reset request; return the seconds to wait if it is over a limit, else None.

    Every request counts against both limits, whichever one refuses it.
    """
    address = email_normalize(email)
    usages: list[dict[str, Any] | None] = [
        get_usage(
            request,
            group=GROUP_ADDRESS,
            key=lambda group, request: address,
            rate=settings.ACCOUNTS_PASSWORD_RESET_RATE_PER_ADDRESS,
            increment=True,
        ),
        get_usage(
            request,
            group=GROUP_CLIENT,
            key="ip",
            rate=settings.ACCOUNTS_PASSWORD_RESET_RATE_PER_CLIENT,
            increment=True,
        ),
    ]
    waits = [max(1, int(usage["time_left"])) for usage in usages if usage and usage["should_limit"]]
    return max(waits) if waits else None
