"""Single-use, short-lived sign-in tokens that carry a new owner from the root host to
their workspace: the session cookie of one host never works on another (cookies are
host-only), so the workspace signs the owner in itself after checking the token.

A token is signed (Django's signing with its own salt), names its tenant and user, expires
after HANDOFF_MAX_AGE seconds and can be redeemed once (its nonce is claimed in Redis).

The hand-off may continue to one place other than the home page: the workspace's own
checkout page for the plan chosen at signup (`next`); anything else is ignored.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.core.cache import caches
from django.urls import reverse

from shared_apps.accounts.errors import HandoffInvalidError
from shared_apps.accounts.models import User
from tenancy import require_tenant

SALT = "accounts.handoff"
HANDOFF_MAX_AGE = 60
_PLAN_CODE = re.compile(r"^[-a-zA-Z0-9_]{1,40}$")  # billing.Plan.code is a slug


def handoff_issue(*, tenant_id: UUID, user_id: int) -> str:
    """Return a token that signs `user_id` in to the tenant `tenant_id`, once, within a minute."""
    payload = {"t": str(tenant_id), "u": user_id, "n": secrets.token_urlsafe(16)}
    return signing.dumps(payload, salt=SALT, compress=True)


def _handoff_load(token: str) -> tuple[User, str]:
    """Check the token and return its user and nonce, without spending it."""
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
    if caches["platform"].get(_nonce_key(payload["n"])) is not None:
        raise HandoffInvalidError(
            "This sign-in link has already been used. Sign in with your password."
        )
    user = User.objects.filter(pk=payload["u"], is_active=True).first()
    if user is None:
        raise HandoffInvalidError("This sign-in link is not valid.")
    return user, str(payload["n"])


def _nonce_key(nonce: str) -> str:
    return f"handoff:{nonce}"


def handoff_peek(token: str) -> User:
    """Return whom the token would sign in, in the active tenant, leaving it unspent.

    The hand-off page shows this before anyone is signed in: a link pushed into someone
    else's browser names the workspace and account it leads to, and needs their click.

    Raises:
        HandoffInvalidError: forged, expired, already used, or issued for another tenant.
    """
    return _handoff_load(token)[0]


def handoff_redeem(token: str) -> User:
    """Return the user the token was issued for, in the active tenant; the token is then spent.

    Raises:
        HandoffInvalidError: forged, expired, already used, or issued for another tenant.
    """
    user, nonce = _handoff_load(token)
    # Claim the nonce atomically (Redis SET NX); it outlives the token's validity window.
    if not caches["platform"].add(_nonce_key(nonce), 1, timeout=HANDOFF_MAX_AGE * 2):
        raise HandoffInvalidError(
            "This sign-in link has already been used. Sign in with your password."
        )
    return user


def handoff_next_clean(raw: str) -> str | None:
    """Return where a hand-off may continue on the workspace's own host, or None.

    Only the billing checkout page with one plan code is allowed, and it is rebuilt from
    its parts: no other host, scheme or path (`//evil.test`, backslashes, ...) comes back.
    """
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    if parts.path != reverse("billing:checkout", urlconf=settings.ROOT_URLCONF):
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    plans = query.get("plan", [])
    if set(query) != {"plan"} or len(plans) != 1 or not _PLAN_CODE.match(plans[0]):
        return None
    return f"{parts.path}?{urlencode({'plan': plans[0]})}"
