"""Migrating one tenant at a time: plans compiled once per set of applied migrations.

Tenants with the same applied migrations share one compiled plan: the SQL Django would run
(what `sqlmigrate` prints) is collected once, inside the first such tenant, and replayed in
one round trip for each of the others. A plan with Python code (RunPython) runs Django's
own executor per tenant instead, starting from a project state rendered once.

On Citus (`tenancy.citus`), the compiled statements are rewritten once into forms Citus
accepts in a distributed schema and sent one at a time (Citus propagates some DDL with the
text it was sent, and a batch of statements is refused on the worker); a plan holding a
statement Citus cannot run there fails each distributed tenant, untouched, naming it.
Django's executor gets the same rewriting, statement by statement.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps
from django.conf import settings
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection, transaction
from django.db.migrations import operations
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState
from psycopg import sql as pgsql

from shared_apps.fleet.migrate.ledger import (
    TenantOutcome,
    TenantTarget,
    one_line,
    tenant_lock_take,
    tenant_migration_record_failure,
    tenant_migration_record_success,
)
from tenancy import citus, tenant_context
from tenancy.db import tenant_connection

logger = logging.getLogger(__name__)

MigrationKey = tuple[str, str]

# Operations after which content types and permissions must be refreshed (post_migrate).
_MODEL_SET_CHANGES = (
    operations.CreateModel,
    operations.DeleteModel,
    operations.RenameModel,
    operations.AlterModelOptions,
)


@dataclass
class _CompiledPlan:
    migrations: list[Migration]
    statements: list[str] | None  # None: the plan has Python code and runs in the executor
    refresh_model_set: bool
    # Why Citus cannot run the statements on a distributed schema ("" when it can).
    citus_refusal: str = ""
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
            return _CompiledPlan(migrations=[], statements=[], refresh_model_set=False)
        python = any(not op.reduces_to_sql for op in all_operations)
        post_apps = self.loader.project_state().apps if refresh or python else None
        # The state of every applied migration, whatever app: a plan may span apps that are
        # not each other's ancestors.
        pre_state = _SharedGraphExecutor(self.loader)._create_project_state(  # type: ignore[attr-defined]
            with_applied_migrations=True
        )
        if not python and all(migration.atomic for migration in migrations):
            statements = [*_collect_sql(migrations, pre_state), _record_applied_sql(migrations)]
            refusal = ""
            if citus.citus_mode():
                statements = [
                    rewritten
                    for statement in statements
                    for rewritten in citus.migration_statement_rewrite(statement)
                ]
                refusal = citus.migration_statements_refusal(statements)
            return _CompiledPlan(
                migrations=migrations,
                statements=statements,
                refresh_model_set=refresh,
                post_apps=post_apps,
                citus_refusal=refusal,
            )
        pre_state.apps  # noqa: B018 - render once; every tenant starts from a clone
        return _CompiledPlan(
            migrations=migrations,
            statements=None,
            refresh_model_set=True,
            pre_state=pre_state,
            post_apps=post_apps,
        )

    # -- migrating -------------------------------------------------------------------------

    def migrate(self, tenant: TenantTarget) -> TenantOutcome:
        """Migrate one tenant in its own transaction with its outcome row; never raises."""
        started = time.monotonic()
        outcome = TenantOutcome(subdomain=tenant.subdomain, tenant_id=tenant.id, status="")
        try:
            with tenant_context(tenant.ref()), transaction.atomic():
                tenant_lock_take(tenant.id)
                plan = self._compiled(self._applied())
                outcome.migrations = plan.names
                if plan.migrations:
                    outcome.method = self._apply(plan, tenant.schema_name)
                tenant_migration_record_success(tenant.id, self.target_state)
            outcome.status = "migrated" if plan.migrations else "up_to_date"
        except Exception as error:  # any failure is this tenant's outcome
            outcome.status = "failed"
            outcome.error = one_line(error)
            tenant_migration_record_failure(tenant.id, outcome.error)
            logger.warning(
                "tenant migration failed",
                extra={
                    "tenant_id": tenant.id,
                    "subdomain": tenant.subdomain,
                    "error": outcome.error,
                },
            )
        finally:
            outcome.seconds = time.monotonic() - started
            tenant_connection().recycle_if_swollen()
        return outcome

    def _apply(self, plan: _CompiledPlan, schema_name: str) -> str:
        if plan.statements is not None:
            if plan.citus_refusal and citus.schema_is_distributed(schema_name):
                raise citus.UnsupportedOnDistributedSchemaError(plan.citus_refusal)
            with connection.cursor() as cursor:
                if citus.citus_mode():
                    for statement in plan.statements:
                        cursor.execute(statement)
                else:
                    cursor.execute("\n".join(plan.statements))
            method = "sql"
        else:
            assert plan.pre_state is not None
            executor = _SharedGraphExecutor(self.loader)
            with _citus_statements(schema_name):
                executor.migrate(
                    self.targets,
                    plan=[(migration, False) for migration in plan.migrations],
                    state=plan.pre_state.clone(),
                )
            method = "python"
        if plan.refresh_model_set:
            emit_post_migrate_signal(
                0,
                False,
                connection.alias,
                apps=plan.post_apps,
                plan=[(migration, False) for migration in plan.migrations],
            )
        return method


def _collect_sql(migrations: list[Migration], state: ProjectState) -> list[str]:
    """The statements the plan runs, as `sqlmigrate` prints them, from the given state."""
    statements: list[str] = []
    for migration in migrations:
        with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            state = migration.apply(state, editor, collect_sql=True)
        statements.extend(editor.collected_sql)
    return statements


@contextmanager
def _citus_statements(schema_name: str) -> Iterator[None]:
    """On Citus, run the executor's statements in the forms Citus accepts, refusing those
    it cannot run on the tenant's distributed schema before they reach it."""
    if not citus.citus_mode():
        yield
        return
    distributed = citus.schema_is_distributed(schema_name)

    def rewritten(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements = citus.migration_statement_rewrite(sql)
        refusal = citus.migration_statements_refusal(statements) if distributed else ""
        if refusal:
            raise citus.UnsupportedOnDistributedSchemaError(refusal)
        result = execute(statements[0], params, many, context)
        for statement in statements[1:]:  # named constraints: no parameters of their own
            unescaped = statement.replace("%%", "%") if params is not None else statement
            execute(unescaped, None, False, context)
        return result

    with connection.execute_wrapper(rewritten):
        yield


def _tenant_app_labels() -> set[str]:
    return {
        config.label
        for name in settings.TENANT_APPS
        if (config := global_apps.get_containing_app_config(name)) is not None
    }


def _record_applied_sql(migrations: list[Migration]) -> str:
    rows = pgsql.SQL(", ").join(
        pgsql.SQL("({}, {}, now())").format(
            pgsql.Literal(migration.app_label), pgsql.Literal(migration.name)
        )
        for migration in migrations
    )
    statement = pgsql.SQL("INSERT INTO django_migrations (app, name, applied) VALUES {};")
    return statement.format(rows).as_string(None)
