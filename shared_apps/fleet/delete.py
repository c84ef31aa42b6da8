"""Delete a tenant for good: its schema, every file under its prefix (archives included),
its cache namespace and its rows in the public schema. The audit records stay.

Only archived tenants, unless forced; never while another app objects (a registered
deletion guard: billing refuses while a paid subscription is live).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction

from shared_apps.fleet.operations import tenant_operation
from shared_apps.tenants.errors import TenantStateInvalidError
from shared_apps.tenants.guards import deletion_refusals
from shared_apps.tenants.models import Tenant
from tenancy import public_context, schemas, tenant_context
from tenancy.cache import tenant_cache_purge
from tenancy.host_routes import routes_changed
from tenancy.storage import tenant_media_purge

logger = logging.getLogger(__name__)

Status = Tenant.Status


@dataclass(frozen=True)
class DeleteResult:
    tenant_id: str
    subdomain: str
    files_deleted: int
    cache_keys_deleted: int


def tenant_delete(
    *,
    actor: str,
    tenant: Tenant | None = None,
    subdomain: str = "",
    force: bool = False,
    confirmed: bool = True,
) -> DeleteResult:
    """Remove a tenant for good: schema, files (archives too), cache entries and rows.

    Name the tenant by instance or, for operators, by subdomain; an interface that asks a
    person first passes their answer as `confirmed`.

    Raises:
        TenantNotFoundError: no tenant has `subdomain`.
        TenantStateInvalidError: not `confirmed`; or the tenant is not archived and `force` is not
            set; or a deletion guard objects (a live paid subscription).
        OperationFailedError: the database, storage or cache failed.
    """
    with tenant_operation(
        "tenant.delete", actor=actor, tenant=tenant, subdomain=subdomain
    ) as operation:
        named = operation.tenant
        if not confirmed:
            raise TenantStateInvalidError(
                f"deleting '{named.subdomain}' cannot be undone; add --yes to confirm"
            )
        result, previous = _delete(named, force)
        operation.detail.update(
            forced=force,
            previous_status=previous,
            files_deleted=result.files_deleted,
            cache_keys_deleted=result.cache_keys_deleted,
        )
    return result


def _delete(tenant: Tenant, force: bool) -> tuple[DeleteResult, str]:
    with public_context():
        tenant.refresh_from_db()
    if tenant.status != Status.ARCHIVED and not force:
        raise TenantStateInvalidError(
            f"'{tenant.subdomain}' is {tenant.status}; only archived tenants can be deleted "
            "(archive it first, or add --force)."
        )
    refusals = deletion_refusals(tenant)
    if refusals:
        raise TenantStateInvalidError(refusals[0])
    with public_context():  # stop serving it before its files go
        Tenant.objects.filter(pk=tenant.pk).update(status=Status.ARCHIVED)
    routes_changed()
    with tenant_context(tenant):
        files = tenant_media_purge()
    keys = tenant_cache_purge(tenant.schema_name)
    tenant_id, subdomain, previous = str(tenant.id), tenant.subdomain, tenant.status
    with public_context(), transaction.atomic():
        schemas.schema_drop(tenant.schema_name)
        Tenant.objects.filter(pk=tenant.pk).delete()  # domains and records go with it
    routes_changed()
    logger.info("tenant deleted", extra={"tenant_id": tenant_id, "subdomain": subdomain})
    result = DeleteResult(
        tenant_id=tenant_id, subdomain=subdomain, files_deleted=files, cache_keys_deleted=keys
    )
    return result, previous
