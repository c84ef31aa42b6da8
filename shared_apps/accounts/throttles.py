"""How often one may ask for a reset link: per e-mail address and per client, per workspace
(the `password_reset` scope of core.ratelimit). The address is normalized first, so
`A@x.test` and `a@x.test` share a count."""

from __future__ import annotations

from django.http import HttpRequest

from core.ratelimit import ThrottledError, rate_limit_hit
from shared_apps.accounts.rules import email_normalize


def password_reset_wait(request: HttpRequest, *, email: str) -> int | None:
    """Count this reset request; return the seconds to wait if it is over a limit, else None."""
    try:
        rate_limit_hit(request, scope="password_reset", address=email_normalize(email))
    except ThrottledError as error:
        return error.retry_after
    return None
