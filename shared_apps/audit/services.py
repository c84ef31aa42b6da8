from __future__ import annotations

from typing import Any
from uuid import UUID

from shared_apps.audit.models import AuditRecord
from tenancy import public_context


def audit_record(
    *, actor: str, action: str, outcome: str, tenant_id: UUID | None = None,
    subdomain: str = "", **detail: Any,
) -> AuditRecord:  # fmt: skip
    """Append one audit record in the public schema."""
    with public_context():
        return AuditRecord.objects.create(
            actor=actor[:254], action=action, tenant_id=tenant_id, subdomain=subdomain,
            outcome=outcome, detail=detail,
        )  # fmt: skip
