"""The audit trail: every operation on a tenant records who did it and how it ended.

Services audit themselves through `audited`; interfaces (pages, API, commands) never write
audit rows, so the same action is recorded the same way whichever door it came through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from django.db import transaction

from core.errors import AppError
from shared_apps.audit.models import AuditRecord
from tenancy import public_context

DETAIL_MAX_CHARS = 2000


class AuditedTenant(Protocol):
    """What the trail needs of a tenant (the tenants app sits above this one)."""

    @property
    def id(self) -> UUID: ...

    @property
    def subdomain(self) -> str: ...


@dataclass
class AuditEntry:
    """What the audited block learns while it runs: the tenant it made, more detail."""

    tenant: AuditedTenant | None = None
    subdomain: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def audit_record(
    *,
    actor: str,
    action: str,
    outcome: str,
    tenant_id: UUID | None = None,
    subdomain: str = "",
    **detail: Any,
) -> AuditRecord:
    """Append one audit record in the public schema."""
    with public_context():
        return AuditRecord.objects.create(
            actor=actor[:254],
            action=action,
            tenant_id=tenant_id,
            subdomain=subdomain[:63],
            outcome=outcome,
            detail=detail,
        )


@contextmanager
def audited(
    action: str,
    *,
    actor: str,
    tenant: AuditedTenant | None = None,
    subdomain: str = "",
    atomic: bool = True,
    **detail: Any,
) -> Iterator[AuditEntry]:
    """Record `action` as succeeded when the block ends, or as failed with the error's code.

    With `atomic`, the block and its success record are one transaction, and a failure is
    recorded after that transaction rolled back, so the record survives the work it
    describes (call it outside any other transaction). Without, the block manages its own
    transactions (dumps, uploads, worker processes). Only AppErrors are recorded as
    failures: they are the refusals and failures a caller is told about.
    """
    entry = AuditEntry(tenant=tenant, subdomain=subdomain, detail=dict(detail))
    try:
        with transaction.atomic() if atomic else nullcontext():
            yield entry
            _write(entry, actor, action, AuditRecord.Outcome.SUCCEEDED)
    except AppError as error:
        failure = {"error": error.code, "detail": error.detail[:DETAIL_MAX_CHARS]}
        _write(entry, actor, action, AuditRecord.Outcome.FAILED, **failure)
        raise


def _write(entry: AuditEntry, actor: str, action: str, outcome: str, **extra: Any) -> None:
    tenant = entry.tenant
    audit_record(
        actor=actor,
        action=action,
        outcome=outcome,
        tenant_id=tenant.id if tenant is not None else None,
        subdomain=tenant.subdomain if tenant is not None else entry.subdomain,
        **entry.detail,
        **extra,
    )
