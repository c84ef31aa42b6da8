"""Reads of the fleet for operators (public schema)."""

from __future__ import annotations

from shared_apps.audit.services import audited
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.selectors import tenant_list

# Tenants with a schema: the ones `tenants run --all` visits.
SERVED = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)


def tenant_list_for_operator(*, actor: str, status: str | None = None) -> list[Tenant]:
    """Return tenants ordered by subdomain for an operator, recording that they looked."""
    # Who looked at the whole fleet is part of the trail, like every change to it.
    with audited("tenants.list", actor=actor, atomic=False, status_filter=status or "") as entry:
        tenants = tenant_list(status=status)
        entry.detail["count"] = len(tenants)
    return tenants


def tenant_list_served() -> list[Tenant]:
    """Return the tenants that have a schema (active or suspended) that can be trusted (not
    quarantined), ordered by subdomain."""
    served = Tenant.objects.filter(status__in=SERVED, quarantined_at__isnull=True)
    return list(served.order_by("subdomain"))
