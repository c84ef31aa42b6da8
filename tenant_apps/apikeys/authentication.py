"""API keys at the door of the API: `Authorization: Bearer tp_…`.

The principal is the key's creator (`request.user`), with the key itself as `request.auth`.
Every service takes a `User` actor and asks the policy by role, so acting as the creator
keeps one rulebook: a key can never do more than its creator's current role allows (demote
the creator and the key weakens; remove them and it stops), and its scopes narrow that
further (`ApiKeyScopePermission`). A separate key principal would need a second policy.
"""

from __future__ import annotations

import hmac
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from shared_apps.accounts.models import User
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.apikeys.services import KEY_PREFIX, PREFIX_LENGTH, api_key_hash, api_key_touch

KEYWORD = b"bearer"
CHALLENGE = 'Bearer realm="api"'


class ApiKeyAuthenticationFailed(exceptions.AuthenticationFailed):
    """401 `authentication_failed` for a bad key, with a Bearer challenge naming the error
    (RFC 6750: `error="invalid_token"`)."""

    default_detail = "Incorrect authentication credentials."


class ApiKeyAuthentication(BaseAuthentication):
    """Find the key by its prefix in the active workspace's schema (one query) and check it."""

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) != 2:
            raise ApiKeyAuthenticationFailed("Send the key as `Authorization: Bearer <key>`.")
        try:
            plaintext = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise ApiKeyAuthenticationFailed("This API key is not valid here.") from None
        if (
            not plaintext.startswith(KEY_PREFIX)
            or plaintext[PREFIX_LENGTH : PREFIX_LENGTH + 1] != "_"
        ):
            raise ApiKeyAuthenticationFailed("This API key is not valid here.")
        key = (
            ApiKey.objects.select_related("created_by")
            .filter(prefix=plaintext[:PREFIX_LENGTH])
            .first()
        )
        # Unknown here (another workspace's key, or made up) and a wrong secret read the same.
        if key is None or not hmac.compare_digest(key.key_hash, api_key_hash(plaintext)):
            raise ApiKeyAuthenticationFailed("This API key is not valid here.")
        if key.is_revoked:
            raise ApiKeyAuthenticationFailed("This API key was revoked.")
        if key.is_expired:
            raise ApiKeyAuthenticationFailed("This API key has expired.")
        if not key.created_by.is_active:
            raise ApiKeyAuthenticationFailed(
                "The person who made this API key is no longer in the workspace."
            )
        api_key_touch(key)
        return key.created_by, key

    def authenticate_header(self, request: Request) -> str:
        """The challenge of a 401: DRF asks the first authentication class (this one)."""
        parts = get_authorization_header(request).split()
        if parts and parts[0].lower() == KEYWORD:
            # A key was sent and refused; without one, RFC 6750 names no error.
            return f'{CHALLENGE}, error="invalid_token"'
        return CHALLENGE


class ApiKeyScopePermission(BasePermission):
    """Hold API-key requests to their key's scopes; other requests pass untouched.

    Safe methods need `read`. Other methods need the view's `api_key_scope` (work
    endpoints such as projects and tasks say `write`), and `admin` where a view says nothing.
    """

    message = "This API key's scopes do not allow this request."

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        if request.method in SAFE_METHODS:
            return key.grants(ApiKey.Scope.READ)
        return key.grants(getattr(view, "api_key_scope", ApiKey.Scope.ADMIN))
