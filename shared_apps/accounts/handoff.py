"""Single-use, short-lived sign-in tokens that carry a new owner from the root host to
their workspace: the session cookie of one host never works on another (cookies are
host-only), so the workspace signs the owner in itself after checking the token.

A token is signed (Django's signing with its own salt), names its tenant and user, expires
after HANDOFF_MAX_AGE seconds and can be redeemed once (its nonce is claimed in Redis).
"""

from __future__ import annotations

import secrets
from uuid import UUID

from django.core import signing
from django.core.cache import caches

from shared_apps.accounts.errors import HandoffInvalidError
from shared_apps.accounts.models import User
from tenancy import require_tenant

SALT = "accounts.handoff"
HANDOFF_MAX_AGE = 60


def handoff_issue(*, tenant_id: UUID, user_id: int) -> str:
    """Return a token that signs `user_id` in to the tenant `tenant_id`, once, within a minute."""
    payload = {"t": str(tenant_id), "u": user_id, "n": secrets.token_urlsafe(16)}
    return signing.dumps(payload, salt=SALT, compress=True)


def handoff_redeem(token: str) -> User:
    """Return the user the token was issued for, in the active tenant; the token is then spent.

    Raises:
        HandoffInvalidError: forged, expired, already used, or issued for another tenant.
    """
    tenant = require_tenant()
    try:
        payload = signing.loads(token, salt=SALT, max_age=HANDOFF_MAX_AGE)
    except signing.SignatureExpired:
        raise HandoffInvalidError(
            "This sign-in link has expired. Sign in with your password."
        ) from None
    except signing.BadSignature:
        raise HandoffInvalidError("This sign-in link is not valid.") from None
    if payload.get("t") != str(tenant.id):
        raise HandoffInvalidError("This sign-in link is not valid.")
    # Claim the nonce atomically (Redis SET NX); it outlives the token's validity window.
    if not caches["platform"].add(f"handoff:{payload['n']}", 1, timeout=HANDOFF_MAX_AGE * 2):
        raise HandoffInvalidError(
            "This sign-in link has already been used. Sign in with your password."
        )
    user = User.objects.filter(pk=payload["u"], is_active=True).first()
    if user is None:
        raise HandoffInvalidError("This sign-in link is not valid.")
    return user
