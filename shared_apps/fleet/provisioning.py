"""Bring a new tenant schema to the current migration state, fast.

The template path replays the SQL captured from a migrated template schema (DDL plus the
rows migrations seed: django_migrations, content types, permissions) in one statement
batch, so signup time does not grow with the number of migrations. Where no template
matches the migrations on disk, the tenant is migrated the slow way and a warning says
to run `manage.py tenants template`.

Both paths run inside the caller's transaction: a failure leaves no schema behind.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from shared_apps.audit.services import audited
from shared_apps.fleet.catalog import (
    CATALOG_VERSION,
    SchemaCatalog,
    catalog_diff,
    schema_catalog_read,
)
from shared_apps.fleet.template_sql import template_sql_render
from shared_apps.tenants.models import PooledSchema, SchemaTemplate
from tenancy import TenantRef, public_context, schemas, tenant_context
from tenancy.context import template_context

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "tenant"


class ProvisioningPath(StrEnum):
    POOL = "pool"
    TEMPLATE = "template"
    MIGRATE = "migrate"


class _TemplateCache:
    """This process's copy of the template SQL, for the migration state on disk."""

    def __init__(self) -> None:
        self._expected_state: str | None = None
        self._sql: str | None = None
        self._lock = threading.Lock()

    def expected_state(self) -> str:
        if self._expected_state is None:
            self._expected_state = tenant_migration_state()
        return self._expected_state

    def sql(self) -> str | None:
        if self._sql is None:
            found = (
                SchemaTemplate.objects.filter(
                    name=TEMPLATE_NAME, migration_state=self.expected_state()
                )
                .values_list("sql", flat=True)
                .first()
            )
            with self._lock:
                self._sql = found
        return self._sql

    def forget(self) -> None:
        with self._lock:
            self._expected_state = None
            self._sql = None


def template_catalog_missing() -> bool:
    """Whether the stored template predates catalogs of the current kind (`tenants verify`
    and fast archives need one)."""
    with public_context():
        return not SchemaTemplate.objects.filter(
            name=TEMPLATE_NAME, catalog__version=CATALOG_VERSION
        ).exists()


TEMPLATE = _TemplateCache()


def tenant_migration_state() -> str:
    """Fingerprint the tenant apps' migrations on disk (what a new schema must contain)."""
    from django.apps import apps

    labels = {
        config.label
        for name in settings.TENANT_APPS
        if (config := apps.get_containing_app_config(name)) is not None
    }
    loader = MigrationLoader(None, ignore_no_migrations=True, load=True)
    names = sorted(f"{app}.{name}" for app, name in loader.disk_migrations if app in labels)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def pool_claim() -> uuid.UUID | None:
    """Take a ready schema from the pool for a new tenant, or None when the pool is empty.

    Call inside the signup transaction: the claim is a row deletion, undone by a rollback.
    """
    row = (
        PooledSchema.objects.select_for_update(skip_locked=True)
        .filter(migration_state=TEMPLATE.expected_state())
        .order_by("created_at")
        .first()
    )
    if row is None:
        return None
    claimed: uuid.UUID = row.id
    row.delete()  # (which also clears row.id)
    return claimed


def pool_fill(*, size: int | None = None) -> int:
    """Top the pool up to `size` (TENANT_POOL_SIZE) schemas; return how many were made."""
    target = settings.TENANT_POOL_SIZE if size is None else size
    made = 0
    with public_context():
        state = TEMPLATE.expected_state()
        while PooledSchema.objects.filter(migration_state=state).count() < target:
            sql = TEMPLATE.sql()
            if sql is None:
                logger.warning("no provisioning template; the schema pool stays empty")
                break
            pooled_id = uuid.uuid4()
            with transaction.atomic():
                schemas.schema_create_from_dump(schemas.schema_name_for(pooled_id), sql)
                PooledSchema.objects.create(id=pooled_id, migration_state=state)
            made += 1
    return made


def pool_prune() -> int:
    """Drop pooled schemas made for other migrations than the ones on disk."""
    dropped = 0
    with public_context():
        stale = PooledSchema.objects.exclude(migration_state=TEMPLATE.expected_state())
        for row in stale:
            with transaction.atomic():
                schemas.schema_drop(schemas.schema_name_for(row.id))
                row.delete()
            dropped += 1
    return dropped


def schema_provision(*, tenant: TenantRef, pooled: bool = False) -> ProvisioningPath:
    """Create the tenant's schema at the current migration state.

    Runs on the public schema inside the caller's transaction: the tenant's schema does not
    exist until the first statement here, so it cannot be entered before. A tenant whose
    id was claimed from the pool already has its schema.
    """
    if pooled:
        return ProvisioningPath.POOL
    sql = TEMPLATE.sql()
    if sql is not None:
        schemas.schema_create_from_dump(tenant.schema_name, sql)
        return ProvisioningPath.TEMPLATE
    logger.warning(
        "no provisioning template for the current migrations; migrating the new schema "
        "(slow). Run `manage.py tenants template` after migrating.",
        extra={"tenant_id": str(tenant.id)},
    )
    schemas.schema_create(tenant.schema_name)
    with tenant_context(tenant):
        _migrate(tenant.schema_name)
    schemas.schema_distribute(tenant.schema_name)
    return ProvisioningPath.MIGRATE


def template_refresh() -> SchemaTemplate:
    """Rebuild the provisioning template from the migrations on disk and store its SQL
    (rendered from its catalog; pg_dump, minutes with thousands of tenants, only where the
    rendering does not serve: `_template_built`)."""
    TEMPLATE.forget()
    state = TEMPLATE.expected_state()
    name = schemas.TEMPLATE_SCHEMA
    with public_context():
        try:
            sql, catalog, sql_from = _template_built(name)
        finally:
            schemas.schema_drop(name)  # the stored SQL is the template; keep the catalog lean
        template, _ = SchemaTemplate.objects.update_or_create(
            name=TEMPLATE_NAME,
            defaults={
                "migration_state": state,
                "sql": sql,
                "catalog": catalog,
                "refreshed_at": timezone.now(),
            },
        )
    TEMPLATE.forget()
    pool_prune()
    logger.info(
        "provisioning template refreshed",
        extra={"migration_state": state[:12], "sql_from": sql_from},
    )
    return template


def _template_built(name: str) -> tuple[str, dict[str, Any], str]:
    """Migrate the template schema and take its SQL: rendered from its catalog, or from
    pg_dump where the rendering declines or does not reproduce it. Returns the SQL, the
    replayed schema's catalog and where the SQL came from ("catalog" or "pg_dump")."""
    migrated = _template_migrated(name)
    sql, why_not = template_sql_render(name)
    if sql is not None:
        try:
            with transaction.atomic():
                catalog, difference = _replayed_catalog(name, sql, migrated)
        except DatabaseError as error:
            catalog, difference = None, f"replaying it failed: {error}"
        if catalog is not None:
            return sql, catalog, "catalog"
        why_not = f"the rendered SQL does not reproduce the schema: {difference}"
        migrated = _template_migrated(name)  # the replay took the migrated schema's place
    logger.warning(
        "provisioning template taken with pg_dump (slow with many tenants)",
        extra={"reason": why_not},
    )
    sql = schemas.schema_dump_portable(name)
    catalog, difference = _replayed_catalog(name, sql, migrated)
    if catalog is None:
        raise RuntimeError(
            "the template's SQL does not reproduce the migrated schema: " + difference
        )
    return sql, catalog, "pg_dump"


def _template_migrated(name: str) -> SchemaCatalog:
    """Migrate a fresh template schema; return its catalog."""
    schemas.schema_drop(name)
    schemas.schema_create(name)
    with template_context(name):
        _migrate(name)
    migrated = schema_catalog_read(name)
    assert migrated is not None  # just migrated
    return migrated


def _replayed_catalog(
    name: str, sql: str, migrated: SchemaCatalog
) -> tuple[dict[str, Any] | None, str]:
    """What `tenants verify` expects of every tenant at these migrations, and what decides
    whether an archive may be made from the template (`archive`): the catalog of a schema
    replayed from the SQL, as new tenants are made, once proved the same as the migrated
    schema's (a dropped column's number aside). None and the difference where it is not.
    """
    schemas.schema_drop(name)
    schemas.schema_create_from_dump(name, sql)
    replayed = schema_catalog_read(name)
    assert replayed is not None  # just replayed
    difference = catalog_diff(migrated, replayed)
    if not difference.is_empty:
        return None, "; ".join(difference.lines(limit=10))
    return replayed.as_json(), ""


@dataclass(frozen=True)
class TemplateRebuilt:
    template: SchemaTemplate
    pool_schemas_made: int


def template_rebuild(*, actor: str) -> TemplateRebuilt:
    """Rebuild the provisioning template, then refill the pool for it (audited)."""
    # Not atomic: the template is built in a schema of its own and the pool fills one
    # schema per transaction.
    with audited("tenants.template", actor=actor, atomic=False) as entry:
        template = template_refresh()
        pooled = pool_fill()
        entry.detail.update(migration_state=template.migration_state, pool_schemas_made=pooled)
    return TemplateRebuilt(template=template, pool_schemas_made=pooled)


def _migrate(schema_name: str) -> None:
    call_command(
        "migrate_schemas",
        schema_name=schema_name,
        interactive=False,
        verbosity=0,
        skip_checks=True,
    )
