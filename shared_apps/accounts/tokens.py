"""Password reset tokens bound to the tenant they were issued in.

Django's generator makes a token single-use (it hashes the password hash and the last
sign-in) and expiring (PASSWORD_RESET_TIMEOUT), but it knows nothing of tenants: user 5 of
workspace A and user 5 of workspace B would share tokens whenever their rows hash alike.
Here the active tenant's id (or "public", for platform staff on the root host) is part of
the hashed value, so a token checks only in the schema it was made in.
"""

from __future__ import annotations

from django.contrib.auth.tokens import PasswordResetTokenGenerator

from shared_apps.accounts.models import User
from tenancy import current_tenant


def token_scope() -> str:
    """Return what binds a token to where it was issued: the tenant id, or public."""
    tenant = current_tenant()
    return "public" if tenant is None else str(tenant.id)


class TenantPasswordResetTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "shared_apps.accounts.tokens.TenantPasswordResetTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        return f"{token_scope()}:{super()._make_hash_value(user, timestamp)}"


password_reset_token = TenantPasswordResetTokenGenerator()
