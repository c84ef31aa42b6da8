"""`tenants migrate`: bring every tenant's schema to the migrations on disk, fast and safely.

Why not django-tenants' `migrate_schemas`: it loads the migration graph and introspects the
catalog once per tenant (its cost grows with the square of the fleet), stops at the first
failing tenant and records nothing (PITFALLS 4 and 5). Here:

- Tenants already at the migrations on disk are found with one query on
  `TenantMigration.migration_state`, a fingerprint of the tenant migrations, and skipped.
- Each worker process loads the migration graph once. Tenants with the same applied
  migrations share one compiled plan: the SQL Django would run (what `sqlmigrate` prints)
  is collected once, inside the first such tenant, and replayed in one round trip for each
  of the others. A plan with Python code (RunPython) runs Django's own executor per tenant
  instead, starting from a project state rendered once.
- Each tenant migrates in its own transaction, together with its outcome row in the public
  schema: a crash or SIGKILL leaves every tenant either migrated and recorded, or untouched.
  A per-tenant advisory lock keeps two runs from migrating the same tenant at once.
- One tenant failing is recorded (state, error, attempts) and the others go on; a re-run
  retries only what failed or is pending.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps as global_apps
from django.conf import settings
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection, connections, transaction
from django.db.migrations import operations
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState
from django.utils import timezone
from psycopg import sql as pgsql

from shared_apps.tenants.models import Tenant, TenantMigration
from shared_apps.tenants.provisioning import TEMPLATE, tenant_migration_state
from tenancy import TenantRef, public_context, tenant_context
from tenancy.db import tenant_connection

logger = logging.getLogger(__name__)

MigrationKey = tuple[str, str]

# A tenant whose tables are locked by long-running work fails fast and is retried by the
# next run, instead of stalling the whole fleet behind it.
TENANT_LOCK_TIMEOUT = "10s"
# Tenants handed to a worker process at a time: small enough to balance the load and keep
# the progress moving, large enough that the hand-over costs nothing.
CHUNK_SIZE = 16
# Only one `tenants migrate` runs at a time (a session lock, released if the run dies).
RUN_LOCK_KEY = 0x74656E616E7473  # "tenants"

# Operations after which content types and permissions must be refreshed (post_migrate).
_MODEL_SET_CHANGES = (
    operations.CreateModel,
    operations.DeleteModel,
    operations.RenameModel,
    operations.AlterModelOptions,
)


@dataclass(frozen=True)
class TenantTarget:
    """A tenant to migrate: what a worker process needs, and nothing it could go stale on."""

    id: str
    subdomain: str
    schema_name: str
    name: str
    status: str

    def ref(self) -> TenantRef:
        return TenantRef(
            id=uuid.UUID(self.id), schema_name=self.schema_name, subdomain=self.subdomain,
            name=self.name, status=self.status,
        )  # fmt: skip

    @classmethod
    def of(cls, tenant: Tenant) -> TenantTarget:
        return cls(
            id=str(tenant.id), subdomain=tenant.subdomain, schema_name=tenant.schema_name,
            name=tenant.name, status=tenant.status,
        )  # fmt: skip


@dataclass
class TenantOutcome:
    subdomain: str
    tenant_id: str
    status: str  # "migrated" | "up_to_date" | "failed" | "pending" (dry run)
    migrations: list[str] = field(default_factory=list)
    method: str = ""  # "sql": compiled plan replayed; "python": Django's executor
    seconds: float = 0.0
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "subdomain": self.subdomain, "tenant_id": self.tenant_id, "status": self.status,
            "migrations": self.migrations, "method": self.method,
            "ms": round(self.seconds * 1000, 1), "error": self.error,
        }  # fmt: skip


@dataclass(frozen=True)
class FleetPlan:
    """Which tenants need `tenants migrate`, found with one query."""

    target_state: str
    pending: list[TenantTarget]
    up_to_date: int


def fleet_plan(*, subdomains: Iterable[str] = (), records: bool = True) -> FleetPlan:
    """Split the (selected) unarchived tenants into pending and up to date, in one query.

    `records=False` treats every tenant as pending (a dry run before the public schema has
    the table of outcomes).
    """
    target = tenant_migration_state()
    with public_context():
        tenants = Tenant.objects.exclude(status=Tenant.Status.ARCHIVED)
        if records:
            tenants = tenants.select_related("migration")
        wanted = [subdomain.lower() for subdomain in subdomains]
        if wanted:
            tenants = tenants.filter(subdomain__in=wanted)
        pending, current = [], 0
        for tenant in tenants.order_by("created_at"):
            record = getattr(tenant, "migration", None) if records else None
            if record is not None and record.migration_state == target:
                current += 1
            else:
                pending.append(TenantTarget.of(tenant))
    return FleetPlan(target_state=target, pending=pending, up_to_date=current)


def tenant_migration_record_current(tenant: Tenant | TenantRef) -> None:
    """Record that a new tenant's schema was made at the migrations on disk."""
    now = timezone.now()
    with public_context():
        TenantMigration.objects.create(
            tenant_id=tenant.id, migration_state=TEMPLATE.expected_state(),
            state=TenantMigration.State.SUCCEEDED, last_success_at=now, last_attempt_at=now,
        )  # fmt: skip


def tenant_migration_mark_pending(tenant: Tenant) -> None:
    """Forget where a tenant's schema stands (a restored archive): the next run migrates it."""
    with public_context():
        TenantMigration.objects.update_or_create(
            tenant_id=tenant.id, defaults={"migration_state": "", "state": "pending"}
        )


# -- one worker ----------------------------------------------------------------------------


@dataclass
class _CompiledPlan:
    migrations: list[Migration]
    sql: str | None  # None: the plan has Python code and runs through the executor
    refresh_model_set: bool
    pre_state: ProjectState | None = None
    post_apps: Any = None  # the models after the plan, for content types and permissions

    @property
    def names(self) -> list[str]:
        return [f"{migration.app_label}.{migration.name}" for migration in self.migrations]


class _SharedGraphExecutor(MigrationExecutor):
    """Django's executor on a graph loaded once per process; only the applied set changes."""

    def __init__(self, loader: MigrationLoader) -> None:  # no super(): it would reload the graph
        self.connection = connection
        self.loader = loader
        self.recorder = MigrationRecorder(connection)
        self.progress_callback = None


class SchemaMigrator:
    """Migrates tenants one at a time on this process's connection, graph loaded once."""

    def __init__(self, *, target_state: str) -> None:
        self.target_state = target_state
        self.loader = MigrationLoader(None, ignore_no_migrations=True)
        self.loader.connection = connection
        labels = _tenant_app_labels()
        self.targets = [key for key in self.loader.graph.leaf_nodes() if key[0] in labels]
        self._plans: dict[frozenset[MigrationKey], _CompiledPlan] = {}

    # -- reading ---------------------------------------------------------------------------

    def _applied(self) -> frozenset[MigrationKey]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT app, name FROM django_migrations")
            rows = cursor.fetchall()
        recorded = {(app, name) for app, name in rows}
        # A squashed migration counts as applied when everything it replaces is.
        for key, squashed in self.loader.replacements.items():
            if all(replaced in recorded for replaced in squashed.replaces):
                recorded.add(key)
        nodes = self.loader.graph.nodes
        return frozenset(key for key in recorded if key in nodes)

    def _plan_keys(self, applied: frozenset[MigrationKey]) -> list[MigrationKey]:
        keys: list[MigrationKey] = []
        seen: set[MigrationKey] = set()
        for target in self.targets:
            for key in self.loader.graph.forwards_plan(target):
                if key not in applied and key not in seen:
                    seen.add(key)
                    keys.append(key)
        return keys

    def pending_migrations(self, tenant: TenantTarget) -> list[str]:
        """The migrations a tenant lacks (for --dry-run); reads, changes nothing."""
        with tenant_context(tenant.ref()):
            keys = self._plan_keys(self._applied())
        return [f"{app}.{name}" for app, name in keys]

    # -- compiling -------------------------------------------------------------------------

    def _compiled(self, applied: frozenset[MigrationKey]) -> _CompiledPlan:
        plan = self._plans.get(applied)
        if plan is None:
            plan = self._plans[applied] = self._compile(applied)
        return plan

    def _compile(self, applied: frozenset[MigrationKey]) -> _CompiledPlan:
        """Compile a plan inside the first tenant that needs it (its catalog answers the
        introspection some operations do); the others share the result."""
        migrations = [self.loader.graph.nodes[key] for key in self._plan_keys(applied)]
        all_operations = [op for migration in migrations for op in migration.operations]
        refresh = any(isinstance(op, _MODEL_SET_CHANGES) for op in all_operations)
        self.loader.applied_migrations = dict.fromkeys(applied)  # type: ignore[assignment]
        if not migrations:
            return _CompiledPlan(migrations=[], sql="", refresh_model_set=False)
        python = any(not op.reduces_to_sql for op in all_operations)
        post_apps = self.loader.project_state().apps if refresh or python else None
        # The state of every applied migration, whatever app: a plan may span apps that are
        # not each other's ancestors.
        pre_state = _SharedGraphExecutor(self.loader)._create_project_state(  # type: ignore[attr-defined]
            with_applied_migrations=True
        )
        if not python and all(migration.atomic for migration in migrations):
            return _CompiledPlan(
                migrations=migrations,
                sql=_collect_sql(migrations, pre_state) + "\n" + _record_applied_sql(migrations),
                refresh_model_set=refresh,
                post_apps=post_apps,
            )
        pre_state.apps  # noqa: B018 - render once; every tenant starts from a clone
        return _CompiledPlan(
            migrations=migrations, sql=None, refresh_model_set=True, pre_state=pre_state,
            post_apps=post_apps,
        )  # fmt: skip

    # -- migrating -------------------------------------------------------------------------

    def migrate(self, tenant: TenantTarget) -> TenantOutcome:
        """Migrate one tenant in its own transaction with its outcome row; never raises."""
        started = time.monotonic()
        outcome = TenantOutcome(subdomain=tenant.subdomain, tenant_id=tenant.id, status="")
        try:
            with tenant_context(tenant.ref()), transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_catalog.set_config('lock_timeout', %s, true), "
                        "pg_catalog.pg_advisory_xact_lock(%s)",
                        [TENANT_LOCK_TIMEOUT, _lock_key(tenant.id)],
                    )
                plan = self._compiled(self._applied())
                outcome.migrations = plan.names
                if plan.migrations:
                    outcome.method = self._apply(plan)
                _record_success(tenant.id, self.target_state)
            outcome.status = "migrated" if plan.migrations else "up_to_date"
        except Exception as error:  # any failure is this tenant's outcome
            outcome.status = "failed"
            outcome.error = _one_line(error)
            _record_failure(tenant.id, outcome.error)
            logger.warning(
                "tenant migration failed",
                extra={"tenant_id": tenant.id, "subdomain": tenant.subdomain,
                       "error": outcome.error},
            )  # fmt: skip
        finally:
            outcome.seconds = time.monotonic() - started
            tenant_connection().recycle_if_swollen()
        return outcome

    def _apply(self, plan: _CompiledPlan) -> str:
        if plan.sql is not None:
            with connection.cursor() as cursor:
                cursor.execute(plan.sql)
            method = "sql"
        else:
            assert plan.pre_state is not None
            executor = _SharedGraphExecutor(self.loader)
            executor.migrate(
                self.targets,
                plan=[(migration, False) for migration in plan.migrations],
                state=plan.pre_state.clone(),
            )
            method = "python"
        if plan.refresh_model_set:
            emit_post_migrate_signal(
                0, False, connection.alias, apps=plan.post_apps,
                plan=[(migration, False) for migration in plan.migrations],
            )  # fmt: skip
        return method


def _collect_sql(migrations: list[Migration], state: ProjectState) -> str:
    """The SQL the plan runs, as `sqlmigrate` prints it, from the given starting state."""
    statements: list[str] = []
    for migration in migrations:
        with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            state = migration.apply(state, editor, collect_sql=True)
        statements.extend(editor.collected_sql)
    return "\n".join(statements)


def _tenant_app_labels() -> set[str]:
    return {
        config.label
        for name in settings.TENANT_APPS
        if (config := global_apps.get_containing_app_config(name)) is not None
    }


def _lock_key(tenant_id: str) -> int:
    """A signed 64-bit advisory lock key for a tenant."""
    return int.from_bytes(uuid.UUID(tenant_id).bytes[:8], "big", signed=True)


def _record_applied_sql(migrations: list[Migration]) -> str:
    rows = pgsql.SQL(", ").join(
        pgsql.SQL("({}, {}, now())").format(
            pgsql.Literal(migration.app_label), pgsql.Literal(migration.name)
        )
        for migration in migrations
    )
    statement = pgsql.SQL("INSERT INTO django_migrations (app, name, applied) VALUES {};")
    return statement.format(rows).as_string(None)


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


def _record_success(tenant_id: str, target_state: str) -> None:
    # Inside the tenant's transaction: the record commits with the migration, or not at all.
    with connection.cursor() as cursor:
        cursor.execute(_SUCCESS_SQL, [tenant_id, target_state])


def _record_failure(tenant_id: str, error: str) -> None:
    try:
        with public_context(), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_FAILURE_SQL, [tenant_id, error[:4000]])
    except Exception:  # the run's summary still reports the failure
        logger.exception("could not record a tenant migration failure")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"


# -- the fleet -----------------------------------------------------------------------------

_WORKER: SchemaMigrator | None = None


def _worker_start(target_state: str) -> None:
    """Start a worker process: die with the parent (a killed run leaves no orphan mid-way:
    its open transaction rolls back), and load the migration graph once."""
    global _WORKER
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    for alias in connections:
        connections[alias].connection = None  # never the parent's socket
    _WORKER = SchemaMigrator(target_state=target_state)


def _worker_migrate(chunk: list[TenantTarget]) -> list[TenantOutcome]:
    assert _WORKER is not None
    return [_WORKER.migrate(tenant) for tenant in chunk]


def _chunks(tenants: list[TenantTarget], size: int) -> Iterator[list[TenantTarget]]:
    for start in range(0, len(tenants), size):
        yield tenants[start : start + size]


def fleet_migrate(
    plan: FleetPlan, *, parallel: int, on_outcome: Callable[[TenantOutcome], None]
) -> list[TenantOutcome]:
    """Migrate the plan's pending tenants over `parallel` processes; report each outcome."""
    outcomes: list[TenantOutcome] = []

    def report(outcome: TenantOutcome) -> None:
        outcomes.append(outcome)
        on_outcome(outcome)

    if parallel <= 1 or len(plan.pending) <= 1:
        migrator = SchemaMigrator(target_state=plan.target_state)
        for tenant in plan.pending:
            report(migrator.migrate(tenant))
        return outcomes

    connections.close_all()  # the workers are forked: none may inherit an open socket
    chunk_size = max(1, min(CHUNK_SIZE, len(plan.pending) // (parallel * 4) or 1))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=parallel, mp_context=context, initializer=_worker_start,
        initargs=(plan.target_state,),
    ) as pool:  # fmt: skip
        futures = {
            pool.submit(_worker_migrate, chunk): chunk
            for chunk in _chunks(plan.pending, chunk_size)
        }
        for future in as_completed(futures):
            try:
                for outcome in future.result():
                    report(outcome)
            except Exception as error:
                # A worker that died breaks the pool: every chunk not yet reported ends up
                # here. Each of its tenants either committed or is untouched; the next run
                # finds out which with its one query.
                for tenant in futures[future]:
                    report(
                        TenantOutcome(
                            subdomain=tenant.subdomain, tenant_id=tenant.id, status="failed",
                            error=f"outcome unknown, a worker process died: {_one_line(error)}",
                        )
                    )  # fmt: skip
    return outcomes


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
