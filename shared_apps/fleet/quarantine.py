"""Quarantine: one mechanism for a tenant whose schema cannot serve the code.

Two causes (`Tenant.QuarantineCause`):

- schema drift, found by `tenants verify`: a table gone, which PostgreSQL would resolve to
  public's. Its hosts answer 503 "unavailable" (`tenant_unavailable`).
- a failed migration, found by `tenants migrate`: the schema is whole but behind the
  release. Its hosts answer 503 "maintenance" with Retry-After (`tenant_maintenance`).

Either way the request never enters the schema, its queued tasks are dropped (any
already handed to a worker are skipped, logged) and `tenants run` refuses it. Each change
is audited (`tenant.quarantine`, `tenant.release`, with the cause) and every process
stops (or starts) routing the tenant at once.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from shared_apps.audit.services import AuditedTenant, audited
from shared_apps.tenants.models import QuarantineCause as Cause
from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tenancy.host_routes import routes_changed
from tenancy.lanes import tenant_tasks_drop

logger = logging.getLogger(__name__)

REASON_MAX_CHARS = 1000


def tenant_quarantine(
    *, tenant: AuditedTenant, cause: Cause, reason: str, actor: str, **detail: Any
) -> bool:
    """Stop routing the tenant and skip its tasks, for `cause` (audited); return whether it
    changed. A tenant already quarantined keeps its first cause until it is released."""
    reason = reason[:REASON_MAX_CHARS]
    with (
        audited(
            "tenant.quarantine",
            actor=actor,
            tenant=tenant,
            cause=str(cause),
            reason=reason,
            **detail,
        ) as entry,
        public_context(),
    ):
        now = timezone.now()
        changed = (
            Tenant.objects.filter(pk=tenant.id, quarantined_at__isnull=True).update(
                quarantined_at=now, quarantine_reason=reason, quarantine_cause=cause, updated_at=now
            )
            == 1
        )
        entry.detail["changed"] = changed
    if changed:
        routes_changed()  # a bulk update sends no signal; the hosts must stop at once
        tenant_tasks_drop(tenant.id)  # likewise its queued tasks (tenancy.lanes)
        logger.warning(
            "tenant quarantined",
            extra={"tenant_id": str(tenant.id), "cause": str(cause), "reason": reason},
        )
    return changed


def tenant_release(*, tenant: AuditedTenant, actor: str, cause: Cause | None = None) -> bool:
    """Route a quarantined tenant again (audited); with `cause`, only a quarantine of that
    cause is lifted. Return whether it changed."""
    with audited("tenant.release", actor=actor, tenant=tenant, cause=str(cause or "")) as entry:
        with public_context():
            quarantined = Tenant.objects.filter(pk=tenant.id, quarantined_at__isnull=False)
            if cause is not None:
                quarantined = quarantined.filter(quarantine_cause=cause)
            changed = (
                quarantined.update(
                    quarantined_at=None,
                    quarantine_reason="",
                    quarantine_cause="",
                    updated_at=timezone.now(),
                )
                == 1
            )
        entry.detail["changed"] = changed
    if changed:
        routes_changed()
        logger.info(
            "tenant released from quarantine",
            extra={"tenant_id": str(tenant.id), "cause": str(cause or "")},
        )
    return changed
