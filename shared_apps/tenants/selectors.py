"""Reads of tenants for operators (public schema)."""

from __future__ import annotations

from shared_apps.tenants.errors import TenantNotFoundError
from shared_apps.tenants.models import Tenant


def tenant_list(*, status: str | None = None) -> list[Tenant]:
    """Return tenants ordered by subdomain, with their primary host prefetched."""
    tenants = Tenant.objects.prefetch_related("domains").order_by("subdomain")
    if status:
        tenants = tenants.filter(status=status)
    return list(tenants)


def tenant_find(*, subdomain: str) -> Tenant | None:
    """Return the tenant with this subdomain (any case, spaces ignored), or None."""
    return Tenant.objects.filter(subdomain__lower=subdomain.strip().lower()).first()


def tenant_get(*, subdomain: str) -> Tenant:
    """Return the tenant with this subdomain.

    Raises:
        TenantNotFoundError: no tenant has it.
    """
    tenant = tenant_find(subdomain=subdomain)
    if tenant is None:
        raise TenantNotFoundError(f"no tenant with subdomain '{subdomain}'")
    return tenant


def tenant_primary_host(tenant: Tenant) -> str | None:
    """Return the tenant's primary host (from prefetched domains when there are)."""
    for domain in tenant.domains.all():
        if domain.is_primary:
            return domain.domain
    return None
