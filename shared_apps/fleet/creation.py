"""Tenant creation: a tenant with its domain, schema and owner, all or nothing."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import psycopg
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction

from core.errors import name_clean
from core.metrics import provisioning_path_count
from shared_apps.accounts.models import User
from shared_apps.accounts.rules import email_clean, password_check
from shared_apps.audit.services import audited
from shared_apps.fleet.migrate.ledger import tenant_migration_record_current
from shared_apps.fleet.provisioning import ProvisioningPath, pool_claim, schema_provision
from shared_apps.fleet.tasks import tenants_pool_refill_task
from shared_apps.tenants.addresses import workspace_host
from shared_apps.tenants.errors import SubdomainTakenError
from shared_apps.tenants.models import Domain, Tenant
from shared_apps.tenants.subdomains import subdomain_clean
from tenancy import TenantRef, public_context, schemas, tenant_context

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantCreated:
    tenant: Tenant
    domain: Domain
    owner: User
    provisioning: ProvisioningPath


def tenant_create(
    *, name: str, subdomain: str, owner_email: str, owner_password: str, actor: str = "signup"
) -> TenantCreated:
    """Create a tenant with its domain, schema and owner, all or nothing (audited).

    Raises:
        SubdomainInvalidError, SubdomainReservedError, SubdomainTakenError,
        EmailInvalidError, PasswordRejectedError, NameInvalidError.
    """
    # Not atomic as a whole: the password is hashed before the transaction opens (below).
    with audited("tenant.create", actor=actor, subdomain=subdomain, atomic=False) as entry:
        name = name_clean(name)
        subdomain = subdomain_clean(subdomain)
        owner_email = email_clean(owner_email)
        password_check(owner_password, user=User(email=owner_email))

        with public_context():
            created = _tenant_create(name, subdomain, owner_email, owner_password)
        entry.tenant = created.tenant
        entry.detail.update(provisioning=created.provisioning, owner_email=owner_email)
    return created


def _pool_refill_later() -> None:
    try:
        tenants_pool_refill_task.apply_async()
    except Exception:  # the broker being down must not fail a signup that has committed
        logger.warning("could not queue the schema pool refill", exc_info=True)


def _tenant_row_create(*, name: str, subdomain: str, tenant_id: uuid.UUID) -> Tenant:
    # Visible to others only once the whole signup has committed, so it is born active.
    return Tenant.objects.create(
        id=tenant_id,
        name=name,
        subdomain=subdomain,
        schema_name=schemas.schema_name_for(tenant_id),
        status=Tenant.Status.ACTIVE,
    )


def _domain_create(*, tenant: Tenant) -> Domain:
    return Domain.objects.create(
        domain=workspace_host(tenant.subdomain), tenant=tenant, is_primary=True
    )


def _owner_create(*, tenant: Tenant, email: str, password_hash: str) -> User:
    with tenant_context(tenant):
        return User.objects.create(
            email=email, password=password_hash, is_staff=True, role=User.Role.OWNER
        )


def _tenant_create(
    name: str, subdomain: str, owner_email: str, owner_password: str
) -> TenantCreated:
    if Tenant.objects.filter(subdomain__lower=subdomain).exists():
        raise SubdomainTakenError(
            f"The subdomain '{subdomain}' is already taken.", field="subdomain"
        )

    # Hash before the transaction: Argon2 is deliberately slow; locks should not wait on it.
    password_hash = make_password(owner_password)
    try:
        with transaction.atomic():
            pooled_id = pool_claim()
            tenant = _tenant_row_create(
                name=name, subdomain=subdomain, tenant_id=pooled_id or uuid.uuid4()
            )
            domain = _domain_create(tenant=tenant)
            path = schema_provision(tenant=TenantRef.of(tenant), pooled=pooled_id is not None)
            tenant_migration_record_current(tenant)
            owner = _owner_create(tenant=tenant, email=owner_email, password_hash=password_hash)
    except IntegrityError as error:
        # Two signups raced for the name: the database's unique index decided. Only a
        # unique violation means "taken"; a check constraint failing is a bug to surface.
        unique = isinstance(error.__cause__, psycopg.errors.UniqueViolation)
        if unique and ("subdomain" in str(error) or "domain" in str(error)):
            raise SubdomainTakenError(
                f"The subdomain '{subdomain}' is already taken.", field="subdomain"
            ) from None
        raise
    provisioning_path_count(path)
    if path == ProvisioningPath.POOL:
        transaction.on_commit(_pool_refill_later)
    logger.info(
        "tenant created",
        extra={"tenant_id": str(tenant.id), "subdomain": subdomain, "provisioning": path},
    )
    return TenantCreated(tenant=tenant, domain=domain, owner=owner, provisioning=path)
