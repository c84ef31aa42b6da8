"""The per-tenant ledger of `tenants migrate`: where each schema stands, and its locks.

Each tenant's row in `tenants_tenantmigration` holds the fingerprint of the tenant
migrations its schema was last brought to, so the tenants that need a run are found with
one query. A success row commits with the tenant's migration (same transaction); a failure
row is written on its own, after the migration rolled back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from shared_apps.fleet.provisioning import TEMPLATE, tenant_migration_state
from shared_apps.tenants.models import Tenant, TenantMigration
from tenancy import TenantRef, public_context
from tenancy.db import tenant_connection

logger = logging.getLogger(__name__)

# A tenant whose tables are locked by long-running work fails fast and is retried by the
# next run, instead of stalling the whole fleet behind it.
TENANT_LOCK_TIMEOUT = "10s"
# Only one `tenants migrate` runs at a time (a session lock, released if the run dies).
RUN_LOCK_KEY = 0x74656E616E7473  # "tenants"


@dataclass(frozen=True)
class TenantTarget:
    """A tenant to migrate: what a worker process needs, and nothing it could go stale on."""

    id: str
    subdomain: str
    schema_name: str
    name: str
    status: str
    # Quarantined because an earlier run failed to migrate it: a success lifts that.
    in_maintenance: bool = False

    def ref(self) -> TenantRef:
        return TenantRef(
            id=uuid.UUID(self.id),
            schema_name=self.schema_name,
            subdomain=self.subdomain,
            name=self.name,
            status=self.status,
        )

    @classmethod
    def of(cls, tenant: Tenant) -> TenantTarget:
        return cls(
            id=str(tenant.id),
            subdomain=tenant.subdomain,
            schema_name=tenant.schema_name,
            name=tenant.name,
            status=tenant.status,
            in_maintenance=tenant.is_in_maintenance,
        )


@dataclass
class TenantOutcome:
    subdomain: str
    tenant_id: str
    status: str  # "migrated" | "up_to_date" | "failed" | "pending" (dry run)
    migrations: list[str] = field(default_factory=list)
    method: str = ""  # "sql": compiled plan replayed; "python": Django's executor
    seconds: float = 0.0
    error: str = ""
    wave: int = 0  # 0 is the canary wave when the run has one
    maintenance: str = ""  # "started": put in maintenance; "ended": a success lifted it

    def as_dict(self) -> dict[str, Any]:
        return {
            "subdomain": self.subdomain,
            "tenant_id": self.tenant_id,
            "status": self.status,
            "migrations": self.migrations,
            "method": self.method,
            "ms": round(self.seconds * 1000, 1),
            "error": self.error,
            "wave": self.wave,
            "maintenance": self.maintenance,
        }


@dataclass(frozen=True)
class FleetPlan:
    """Which tenants need `tenants migrate`, found with one query."""

    target_state: str
    pending: list[TenantTarget]
    up_to_date: int


def fleet_plan(*, subdomains: Iterable[str] = (), records: bool = True) -> FleetPlan:
    """Split the (selected) unarchived tenants into pending and up to date, in one query;
    pending tenants come oldest first (the order canaries and waves are taken in).

    A tenant in maintenance is pending even at the current fingerprint (a run that was
    stopped after migrating it, before lifting the maintenance): the next run lifts it.
    `records=False` treats every tenant as pending (a dry run before the public schema has
    the table of outcomes).
    """
    target = tenant_migration_state()
    with public_context():
        tenants = Tenant.objects.exclude(status=Tenant.Status.ARCHIVED)
        wanted = [subdomain.lower() for subdomain in subdomains]
        if wanted:
            tenants = tenants.filter(subdomain__in=wanted)
        # Plain rows, not models: with 10,000 tenants building the models was most of a
        # run with nothing to do.
        fields = ["id", "subdomain", "schema_name", "name", "status", "quarantine_cause"]
        if records:
            fields.append("migration__migration_state")
        rows = tenants.order_by("created_at", "id").values_list(*fields)
        pending, current = [], 0
        for tenant_id, subdomain, schema_name, name, status, cause, *recorded in rows:
            in_maintenance = cause == Tenant.QuarantineCause.MIGRATION_FAILED
            if recorded == [target] and not in_maintenance:
                current += 1
                continue
            pending.append(
                TenantTarget(
                    id=str(tenant_id),
                    subdomain=subdomain,
                    schema_name=schema_name,
                    name=name,
                    status=status,
                    in_maintenance=in_maintenance,
                )
            )
    return FleetPlan(target_state=target, pending=pending, up_to_date=current)


def tenant_migration_record_current(tenant: Tenant | TenantRef) -> None:
    """Record that a new tenant's schema was made at the migrations on disk."""
    now = timezone.now()
    with public_context():
        TenantMigration.objects.create(
            tenant_id=tenant.id,
            migration_state=TEMPLATE.expected_state(),
            state=TenantMigration.State.SUCCEEDED,
            last_success_at=now,
            last_attempt_at=now,
        )


def tenant_migration_record_state(tenant: Tenant, migration_state: str) -> None:
    """Record that a tenant's schema is at `migration_state` (restored exactly there)."""
    now = timezone.now()
    with public_context():
        TenantMigration.objects.update_or_create(
            tenant_id=tenant.id,
            defaults={
                "migration_state": migration_state,
                "state": TenantMigration.State.SUCCEEDED,
                "last_success_at": now,
                "last_attempt_at": now,
                "last_error": "",
                "failed_attempts": 0,
            },
        )


def tenant_migration_mark_pending(tenant: Tenant) -> None:
    """Forget where a tenant's schema stands (a restored archive): the next run migrates it."""
    with public_context():
        TenantMigration.objects.update_or_create(
            tenant_id=tenant.id, defaults={"migration_state": "", "state": "pending"}
        )


_HELD_SQL = """
INSERT INTO public.tenants_tenantmigration
    (tenant_id, migration_state, state, last_error, failed_attempts)
SELECT held.id, '', 'pending', '', 0 FROM unnest(%s::uuid[]) AS held(id)
ON CONFLICT (tenant_id) DO UPDATE SET state = 'pending'
"""


def tenant_migrations_mark_held(tenant_ids: list[str]) -> None:
    """Record that a stopped rollout did not try these tenants: they wait for the next run
    (their fingerprint, what their schema has, stays as it is)."""
    if not tenant_ids:
        return
    with public_context(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_HELD_SQL, [tenant_ids])


def tenant_lock_take(tenant_id: str) -> None:
    """Hold the tenant's migration lock until the transaction ends; wait at most
    TENANT_LOCK_TIMEOUT for its tables."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_catalog.set_config('lock_timeout', %s, true), "
            "pg_catalog.pg_advisory_xact_lock(%s)",
            [TENANT_LOCK_TIMEOUT, _lock_key(tenant_id)],
        )


def _lock_key(tenant_id: str) -> int:
    """A signed 64-bit advisory lock key for a tenant."""
    return int.from_bytes(uuid.UUID(tenant_id).bytes[:8], "big", signed=True)


_SUCCESS_SQL = """
INSERT INTO public.tenants_tenantmigration
    (tenant_id, migration_state, state, last_success_at, last_attempt_at, last_error,
     failed_attempts)
VALUES (%s, %s, 'succeeded', now(), now(), '', 0)
ON CONFLICT (tenant_id) DO UPDATE SET
    migration_state = EXCLUDED.migration_state, state = 'succeeded',
    last_success_at = now(), last_attempt_at = now(), last_error = '', failed_attempts = 0
"""

_FAILURE_SQL = """
INSERT INTO public.tenants_tenantmigration
    (tenant_id, migration_state, state, last_attempt_at, last_error, failed_attempts)
VALUES (%s, '', 'failed', now(), %s, 1)
ON CONFLICT (tenant_id) DO UPDATE SET
    state = 'failed', last_attempt_at = now(), last_error = EXCLUDED.last_error,
    failed_attempts = public.tenants_tenantmigration.failed_attempts + 1
"""


def tenant_migration_record_success(tenant_id: str, target_state: str) -> None:
    # Inside the tenant's transaction: the record commits with the migration, or not at all.
    with connection.cursor() as cursor:
        cursor.execute(_SUCCESS_SQL, [tenant_id, target_state])


def tenant_migration_record_failure(tenant_id: str, error: str) -> None:
    try:
        with public_context(), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_FAILURE_SQL, [tenant_id, error[:4000]])
    except Exception:  # the run's summary still reports the failure
        logger.exception("could not record a tenant migration failure")


def one_line(error: BaseException) -> str:
    """The error as one line for the ledger and the report: its type, then its message."""
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"


class RunLock:
    """Refuse a second `tenants migrate` while one runs.

    A session advisory lock on a connection of its own (the run closes Django's connections
    before forking workers); PostgreSQL releases it if the run dies.
    """

    def __enter__(self) -> bool:
        wrapper = tenant_connection()
        self._raw = wrapper.get_new_connection(wrapper.get_connection_params())
        self._raw.autocommit = True
        row = self._raw.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)", [RUN_LOCK_KEY])
        found = row.fetchone()
        return bool(found and found[0])

    def __exit__(self, *exc_info: object) -> None:
        self._raw.close()
