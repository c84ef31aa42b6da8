"""One operation on one tenant: audited, and failing with one line whatever broke.

Archive, restore, delete, export and run go through `tenant_operation`: the tenant is
named by instance (code) or by subdomain (operators), an unknown name is a refusal like any
other, and a database, storage or tool failure becomes one OperationFailedError line. Every
outcome is recorded in the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import DatabaseError

from shared_apps.audit.services import AuditEntry, audited
from shared_apps.fleet.errors import OperationFailedError
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.selectors import tenant_get

logger = logging.getLogger(__name__)

DETAIL_MAX_CHARS = 2000


@dataclass(frozen=True)
class TenantOperation:
    """The tenant an operation works on, and its audit entry (add detail as it goes)."""

    tenant: Tenant
    entry: AuditEntry

    @property
    def detail(self) -> dict[str, Any]:
        return self.entry.detail


@contextmanager
def tenant_operation(
    action: str, *, actor: str, tenant: Tenant | None = None, subdomain: str = "", **detail: Any
) -> Iterator[TenantOperation]:
    """Run the block as `action` on the tenant given, or else the one with `subdomain`.

    Not atomic: the block manages its own transactions (dumps, uploads, schemas).

    Raises:
        TenantNotFoundError: no tenant has `subdomain`.
        OperationFailedError: a database, storage or tool step failed.
    """
    with audited(
        action, actor=actor, tenant=tenant, subdomain=subdomain, atomic=False, **detail
    ) as entry:
        named = tenant if tenant is not None else tenant_get(subdomain=subdomain)
        entry.tenant = named
        try:
            yield TenantOperation(tenant=named, entry=entry)
        except (DatabaseError, psycopg.Error, OSError, RuntimeError) as error:
            logger.warning(
                "%s failed",
                action,
                extra={"tenant_id": str(named.id), "error": str(error)[:DETAIL_MAX_CHARS]},
            )
            raise OperationFailedError(
                f"{action} of '{named.subdomain}' failed: {error}"
            ) from error
