"""Making and revoking a workspace's API keys."""

from __future__ import annotations

import hashlib
import logging
import secrets
import string
from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone

from core.text import single_line
from shared_apps.accounts.models import User
from shared_apps.audit.services import audited
from tenancy import require_tenant
from tenant_apps.apikeys.errors import ApiKeyInvalidError, ApiKeyScopeNotAllowedError
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.members import policy

logger = logging.getLogger(__name__)

KEY_PREFIX = "tp_"
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
PREFIX_RANDOM_CHARS = 8
PREFIX_LENGTH = len(KEY_PREFIX) + PREFIX_RANDOM_CHARS
SECRET_BYTES = 32


def api_key_hash(plaintext: str) -> str:
    """The stored digest of a full key.

    SHA-256, not a password hasher: the secret is 256 random bits, so guessing it is out of
    reach however fast the hash is; a deliberately slow hasher (PBKDF2, Argon2) protects
    low-entropy passwords and would only add its cost to every API request (and hand a
    flood of bogus keys a CPU lever).
    """
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _key_generate() -> tuple[str, str]:
    prefix = KEY_PREFIX + "".join(
        secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_RANDOM_CHARS)
    )
    return prefix, f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def api_key_create(
    *, actor: User, name: str, scopes: Sequence[str], expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Make a key acting as `actor`; return it with its full text, which is never shown again.

    Audited as `apikey.create`.

    Raises:
        PermissionDenied: only owners and admins manage keys.
        ApiKeyScopeNotAllowedError: a scope above the actor's own power (admin: owners only).
        ApiKeyInvalidError: no name, no scope, or an expiry in the past.
    """
    policy.require(actor, "apikey.manage")
    prefix, plaintext = _key_generate()
    with audited(
        "apikey.create",
        actor=f"user:{actor.email}",
        tenant=require_tenant(),
        key_prefix=prefix,
        scopes=sorted(set(scopes)),
    ):
        name = single_line(name)[:120]
        if not name:
            raise ApiKeyInvalidError("Give the key a name.", field="name")
        wanted = sorted(set(scopes))
        if not wanted or any(scope not in ApiKey.Scope.values for scope in wanted):
            raise ApiKeyInvalidError("Choose at least one known scope.", field="scopes")
        allowed = policy.api_key_scopes_grantable_by(actor)
        refused = [scope for scope in wanted if scope not in allowed]
        if refused:
            raise ApiKeyScopeNotAllowedError(
                f"You cannot give a key the {', '.join(refused)} scope.", field="scopes"
            )
        if expires_at is not None and expires_at <= timezone.now():
            raise ApiKeyInvalidError("The expiry must be in the future.", field="expires_at")
        key = ApiKey.objects.create(
            name=name,
            prefix=prefix,
            key_hash=api_key_hash(plaintext),
            scopes=wanted,
            created_by=actor,
            expires_at=expires_at,
        )
    logger.info("api key created", extra={"key_prefix": prefix, "scopes": wanted})
    return key, plaintext


def api_key_revoke(*, actor: User, key: ApiKey) -> ApiKey:
    """Make the key stop working at once; revoking twice is not an error.

    Audited as `apikey.revoke`.

    Raises:
        PermissionDenied: only owners and admins manage keys.
    """
    policy.require(actor, "apikey.manage", key)
    with audited(
        "apikey.revoke", actor=f"user:{actor.email}", tenant=require_tenant(), key_prefix=key.prefix
    ):
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked_at is None:
            locked.revoked_at = timezone.now()
            locked.save(update_fields=["revoked_at"])
    logger.info("api key revoked", extra={"key_prefix": key.prefix})
    key.revoked_at = locked.revoked_at
    return key


def api_key_touch(key: ApiKey) -> None:
    """Note that the key was used, at most once a minute (no write on every request)."""
    now = timezone.now()
    if key.last_used_at is not None and (now - key.last_used_at).total_seconds() < 60:
        return
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now
