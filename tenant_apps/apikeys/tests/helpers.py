from __future__ import annotations

from datetime import datetime

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.apikeys.services import api_key_create
from tests.fixtures import TENANT_A


def owner_of(tenant: Tenant, email: str = TENANT_A.owner_email) -> User:
    with tenant_context(tenant):
        return User.objects.get(email=email)


def key_in(
    tenant: Tenant,
    *,
    scopes: list[str],
    actor: User | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A key made by the tenant's owner (or `actor`) through the service."""
    with tenant_context(tenant):
        maker = actor or User.objects.filter(role=User.Role.OWNER).order_by("pk").first()
        assert maker is not None
        return api_key_create(actor=maker, name="CI", scopes=scopes, expires_at=expires_at)


def bearer(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}
