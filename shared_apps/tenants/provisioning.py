"""Bring a new tenant schema to the current migration state.

This is the straightforward path: create the schema and run the tenant apps' migrations
into it, inside the caller's transaction, so a failure leaves no schema behind.
"""

from __future__ import annotations

from django.core.management import call_command

from tenancy import TenantRef, schemas, tenant_context


def schema_provision(*, tenant: TenantRef) -> None:
    """Create the tenant's schema and migrate the tenant apps into it.

    Runs inside the caller's transaction, on the public schema: the tenant's schema
    does not exist until the first statement here, so it cannot be entered before.
    """
    schemas.schema_create(tenant.schema_name)
    with tenant_context(tenant):
        call_command(
            "migrate_schemas",
            schema_name=tenant.schema_name,
            interactive=False,
            verbosity=0,
            skip_checks=True,
        )
