"""The tenant of the work in progress, for error reports and spans (core.telemetry).

The settings name `telemetry_tenant` as `TELEMETRY_TENANT`: core cannot import tenancy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.logging import current_task_header
from tenancy.context import TenantRef, current_tenant, is_public_active
from tenancy.tasks import TENANT_HEADER, TENANT_NAME_HEADER

if TYPE_CHECKING:
    from django.http import HttpRequest

PUBLIC_NAME = "public"


def telemetry_tenant(request: HttpRequest | None = None) -> tuple[str | None, str | None]:
    """Return the active tenant's id and subdomain ("public" on the public schema).

    Outside the tenant's context, a routed request (its server span ends after the context
    is left) or the Celery task being run (its error is captured around the body) say it.
    """
    tenant = current_tenant()
    if tenant is not None:
        return str(tenant.id), tenant.subdomain
    if is_public_active():
        return None, PUBLIC_NAME
    if request is not None:
        routed = getattr(request, "tenant", None)
        if isinstance(routed, TenantRef):
            return str(routed.id), routed.subdomain
        if routed is not None and getattr(routed, "is_public", False):
            return None, PUBLIC_NAME
        return None, None
    return current_task_header(TENANT_HEADER), current_task_header(TENANT_NAME_HEADER)
