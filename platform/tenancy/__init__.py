"""Tenant context: the only code that finds a tenant and carries it.

Everything else asks this package which tenant is active (`current_tenant`,
`require_tenant`) or enters one (`tenant_context`, `public_context`).
"""

from tenancy.context import (
    PUBLIC,
    TenantRef,
    active_schema,
    current_tenant,
    public_context,
    require_tenant,
    tenant_context,
)
from tenancy.errors import NoActiveTenantError, TenancyError, TenantSchemaMissingError

__all__ = [
    "PUBLIC",
    "NoActiveTenantError",
    "TenancyError",
    "TenantRef",
    "TenantSchemaMissingError",
    "active_schema",
    "current_tenant",
    "public_context",
    "require_tenant",
    "tenant_context",
]
