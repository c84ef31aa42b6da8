"""Tenant state changes: suspending a tenant and serving it again.

Creating, archiving, restoring and deleting tenants are fleet operations
(`shared_apps.fleet`).
"""

from __future__ import annotations

import logging

from shared_apps.audit.services import AuditEntry, audited
from shared_apps.tenants.errors import TenantStateInvalidError
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.selectors import tenant_get
from tenancy import public_context

logger = logging.getLogger(__name__)


def tenant_suspend(
    *,
    reason: str,
    actor: str,
    tenant: Tenant | None = None,
    subdomain: str = "",
    for_non_payment: bool = False,
) -> Tenant:
    """Stop serving a tenant: its site shows a suspended page, its tasks are skipped.

    Nothing is deleted. Suspending a suspended tenant changes nothing. Name the tenant by
    instance or, for operators, by subdomain. `for_non_payment` (billing's dunning only)
    leaves its owners one door: signing in to the billing page to pay.

    Raises:
        TenantNotFoundError: no tenant has `subdomain`.
        TenantStateInvalidError: the tenant is archived.
    """
    suspended_for = (
        Tenant.SuspendedFor.NON_PAYMENT if for_non_payment else Tenant.SuspendedFor.OPERATOR
    )
    with (
        audited(
            "tenant.suspend",
            actor=actor,
            tenant=tenant,
            subdomain=subdomain,
            reason=reason,
            suspended_for=suspended_for.value,
        ) as entry,
        public_context(),
    ):
        tenant = _locked(entry, tenant, subdomain)
        if tenant.status == Tenant.Status.SUSPENDED:
            return tenant
        if tenant.status != Tenant.Status.ACTIVE:
            raise TenantStateInvalidError(
                f"'{tenant.subdomain}' is {tenant.status}; only active tenants can be suspended."
            )
        tenant.status = Tenant.Status.SUSPENDED
        tenant.suspended_for = suspended_for
        tenant.save(update_fields=["status", "suspended_for", "updated_at"])
    logger.info("tenant suspended", extra={"tenant_id": str(tenant.id)})
    return tenant


def tenant_resume(*, actor: str, tenant: Tenant | None = None, subdomain: str = "") -> Tenant:
    """Serve a suspended tenant again. Name it by instance or, for operators, by subdomain.

    Raises:
        TenantNotFoundError: no tenant has `subdomain`.
        TenantStateInvalidError: the tenant is not suspended.
    """
    with (
        audited("tenant.resume", actor=actor, tenant=tenant, subdomain=subdomain) as entry,
        public_context(),
    ):
        tenant = _locked(entry, tenant, subdomain)
        if tenant.status == Tenant.Status.ACTIVE:
            return tenant
        if tenant.status != Tenant.Status.SUSPENDED:
            raise TenantStateInvalidError(
                f"'{tenant.subdomain}' is {tenant.status}; only suspended tenants can be resumed."
            )
        tenant.status = Tenant.Status.ACTIVE
        tenant.suspended_for = Tenant.SuspendedFor.NONE
        tenant.save(update_fields=["status", "suspended_for", "updated_at"])
    logger.info("tenant resumed", extra={"tenant_id": str(tenant.id)})
    return tenant


def _locked(entry: AuditEntry, tenant: Tenant | None, subdomain: str) -> Tenant:
    """The tenant's row, locked until the transaction ends; a name is looked up first (an
    unknown one is a refusal recorded like the others)."""
    if tenant is None:
        tenant = tenant_get(subdomain=subdomain)
        entry.tenant = tenant
    return Tenant.objects.select_for_update().get(pk=tenant.pk)
