"""The end of a tenant's life: archive, restore, delete, and export for data portability.

All of them work on one tenant at a time (a whole-database pg_dump fails on a large fleet),
and each writes an audit record, whether it succeeds or fails.

- archive: in one transaction, lock the tenant's tables against writes, dump its schema
  from that exact snapshot, store the dump under the tenant's media prefix, mark the tenant
  archived and drop the schema. Interrupted anywhere, nothing has changed. Its files stay.
- restore: recreate the schema from the newest archive, bring it to the current
  migrations, and put back the status it had (active, or suspended). Interrupted, it
  continues from where it stopped when run again.
- delete: remove the schema, every file under the tenant's prefix (archives included),
  its cache namespace and its rows in the public schema. Only archived tenants, unless
  forced; never while a paid subscription is live.
- export: a zip with one JSON file per model and the tenant's files, for the customer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psycopg
from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from core.errors import AppError
from shared_apps.audit.services import audit_record
from shared_apps.tenants.errors import (
    ArchiveCorruptError,
    ArchiveMissingError,
    ExportTargetExistsError,
    FleetOperationError,
    TenantStateError,
)
from shared_apps.tenants.migrator import (
    SchemaMigrator,
    TenantTarget,
    tenant_migration_mark_pending,
)
from shared_apps.tenants.models import Tenant, TenantArchive
from shared_apps.tenants.provisioning import TEMPLATE
from tenancy import public_context, schemas, tenant_context
from tenancy.cache import tenant_cache_invalidate, tenant_cache_purge
from tenancy.host_routes import routes_changed
from tenancy.storage import tenant_media_names, tenant_media_purge

logger = logging.getLogger(__name__)

# Under each tenant's media prefix, the platform's own files (archives) live here: never
# exported, never handed out by the application.
PLATFORM_FOLDER = "_platform"
ARCHIVE_FOLDER = f"{PLATFORM_FOLDER}/archives"
EXPORT_FORMAT = 1
# Archiving waits this long for the tenant's running writes to finish, then gives up
# (nothing changes; try again).
ARCHIVE_LOCK_TIMEOUT = "30s"
ARCHIVE_ATTEMPTS = 3

# Models not exported: secrets (second factors), security logs and framework bookkeeping.
EXPORT_EXCLUDED_APPS = {"contenttypes", "sessions", "admin", "otp_static", "otp_totp", "axes"}
EXPORT_EXCLUDED_MODELS = {"auth.permission", "auth.group"}
EXPORT_EXCLUDED_FIELDS = {"accounts.user": {"password"}}

Status = Tenant.Status
Result = TypeVar("Result")


@dataclass(frozen=True)
class ArchiveResult:
    tenant: Tenant
    archive: TenantArchive
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    tenant: Tenant
    archive: TenantArchive | None
    migrations: list[str]
    seconds: float


@dataclass(frozen=True)
class DeleteResult:
    tenant_id: str
    subdomain: str
    files_deleted: int
    cache_keys_deleted: int


@dataclass(frozen=True)
class ExportResult:
    path: Path
    models: dict[str, int]
    files: int
    size_bytes: int
    seconds: float


def _audited(action: str, tenant: Tenant, actor: str, work: Callable[[], Result]) -> Result:
    """Run `work`; record a failure (with the error's code) in the audit log and turn
    database, storage and tool failures into one FleetOperationError line."""
    try:
        return work()
    except AppError as error:
        _audit_failure(action, tenant, actor, error)
        raise
    except (DatabaseError, psycopg.Error, OSError, RuntimeError) as error:
        logger.warning(
            "%s failed", action, extra={"tenant_id": str(tenant.id), "error": str(error)[:2000]}
        )
        failure = FleetOperationError(f"{action} of '{tenant.subdomain}' failed: {error}")
        _audit_failure(action, tenant, actor, failure)
        raise failure from error


def _audit_failure(action: str, tenant: Tenant, actor: str, error: AppError) -> None:
    audit_record(
        actor=actor, action=action, outcome="failed", tenant_id=tenant.id,
        subdomain=tenant.subdomain, error=error.code, detail=error.detail[:2000],
    )  # fmt: skip


# -- archive and restore ------------------------------------------------------------------


def tenant_archive(*, tenant: Tenant, actor: str) -> ArchiveResult:
    """Dump the tenant's schema to storage, then drop the schema. Nothing else is deleted.

    Raises:
        TenantStateError: the tenant is not active or suspended.
        FleetOperationError: the dump, the upload or the database failed (nothing changed).
    """
    return _audited("tenant.archive", tenant, actor, lambda: _archive(tenant, actor))


def _archive(tenant: Tenant, actor: str) -> ArchiveResult:
    """Archive, trying again when the table locks deadlock with the tenant's own writes
    (PostgreSQL then cancels one side; when it is the archive, nothing has changed yet)."""
    for attempt in range(1, ARCHIVE_ATTEMPTS + 1):
        try:
            return _archive_once(tenant, actor)
        except OperationalError as error:
            if attempt == ARCHIVE_ATTEMPTS or not isinstance(
                error.__cause__, psycopg.errors.DeadlockDetected
            ):
                raise
            logger.warning("archive deadlocked with a write; trying again", extra={
                "tenant_id": str(tenant.id), "attempt": attempt})  # fmt: skip
    raise AssertionError("unreachable")


def _archive_once(tenant: Tenant, actor: str) -> ArchiveResult:
    started = time.monotonic()
    stored: str | None = None
    try:
        with public_context(), transaction.atomic():
            locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
            if locked.status not in (Status.ACTIVE, Status.SUSPENDED):
                raise TenantStateError(
                    f"'{locked.subdomain}' is {locked.status}; only active or suspended "
                    "tenants can be archived."
                )
            previous = locked.status
            snapshot = _writes_stopped(locked.schema_name)
            with tempfile.TemporaryDirectory(prefix="tenant-archive-") as folder:
                dump = Path(folder) / "schema.pgdump"
                schemas.schema_dump_archive(locked.schema_name, str(dump), snapshot=snapshot)
                digest, size = _sha256(dump)
                stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
                with tenant_context(locked), dump.open("rb") as handle:
                    stored = default_storage.save(f"{ARCHIVE_FOLDER}/{stamp}.pgdump", File(handle))
            locked.status = Status.ARCHIVED
            locked.save(update_fields=["status", "updated_at"])
            archive = TenantArchive.objects.create(
                tenant=locked, storage_name=stored, size_bytes=size, sha256=digest,
                migration_state=_recorded_state(locked), previous_status=previous,
            )  # fmt: skip
            schemas.schema_drop(locked.schema_name)
            audit_record(
                actor=actor, action="tenant.archive", outcome="succeeded", tenant_id=tenant.id,
                subdomain=tenant.subdomain, archive=stored, size_bytes=size, sha256=digest,
                previous_status=previous,
            )  # fmt: skip
    except BaseException:
        if stored is not None:  # the transaction rolled back: the upload is an orphan
            _delete_quietly(tenant, stored)
        raise
    tenant.status = Status.ARCHIVED
    tenant_cache_invalidate(tenant.schema_name)
    routes_changed()
    logger.info("tenant archived", extra={"tenant_id": str(tenant.id), "archive": stored})
    return ArchiveResult(tenant=tenant, archive=archive, seconds=time.monotonic() - started)


def _writes_stopped(schema_name: str) -> str:
    """Lock the schema's tables against writes until the transaction ends, and return a
    snapshot that pg_dump can share: the dump holds every committed write.

    SHARE mode: it waits for running writes to commit and blocks new ones, while reads and
    the row locks of foreign-key checks (deferred to commit) go on.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_catalog.set_config('lock_timeout', %s, true)", [ARCHIVE_LOCK_TIMEOUT]
        )
        cursor.execute(
            "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_catalog.pg_tables "
            "WHERE schemaname = %s ORDER BY tablename",
            [schema_name],
        )
        tables = [row[0] for row in cursor.fetchall()]
        if tables:
            cursor.execute(f"LOCK TABLE {', '.join(tables)} IN SHARE MODE")
        cursor.execute("SELECT pg_catalog.pg_export_snapshot()")
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def _delete_quietly(tenant: Tenant, name: str) -> None:
    try:
        with tenant_context(tenant):
            default_storage.delete(name)
    except Exception:  # the archive failed already; an orphan file is the lesser problem
        logger.exception("could not remove an unused archive file", extra={"name": name})


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _recorded_state(tenant: Tenant) -> str:
    record = getattr(tenant, "migration", None)
    return record.migration_state if record is not None else ""


def tenant_restore(*, tenant: Tenant, actor: str) -> RestoreResult:
    """Recreate an archived tenant's schema from its newest archive and serve it again.

    The schema is brought to the current migrations first; the tenant gets back the status
    it had when archived. A restore that stopped half-way continues when run again.

    Raises:
        TenantStateError: the tenant is not archived, or its schema cannot be migrated.
        ArchiveMissingError, ArchiveCorruptError, FleetOperationError.
    """
    return _audited("tenant.restore", tenant, actor, lambda: _restore(tenant, actor))


def _restore(tenant: Tenant, actor: str) -> RestoreResult:
    started = time.monotonic()
    with public_context():
        tenant.refresh_from_db()
        if tenant.status != Status.ARCHIVED:
            raise TenantStateError(
                f"'{tenant.subdomain}' is {tenant.status}; only archived tenants can be restored."
            )
        archive = tenant.archives.filter(restored_at__isnull=True).first()
        schema_present = schemas.schema_exists(tenant.schema_name)
    if not schema_present:  # else: an earlier restore recreated it and stopped after
        if archive is None:
            raise ArchiveMissingError(f"'{tenant.subdomain}' has no archive to restore from.")
        _schema_from_archive(tenant, archive)

    tenant_migration_mark_pending(tenant)
    outcome = SchemaMigrator(target_state=TEMPLATE.expected_state()).migrate(
        TenantTarget.of(tenant)
    )
    if outcome.status == "failed":
        raise TenantStateError(
            f"'{tenant.subdomain}' was restored but not migrated ({outcome.error}); it stays "
            "archived: fix the cause and run restore again."
        )
    status = archive.previous_status if archive is not None else Status.ACTIVE
    with public_context(), transaction.atomic():
        if archive is not None:
            archive.restored_at = timezone.now()
            archive.save(update_fields=["restored_at"])
        Tenant.objects.filter(pk=tenant.pk).update(status=status, updated_at=timezone.now())
        audit_record(
            actor=actor, action="tenant.restore", outcome="succeeded", tenant_id=tenant.id,
            subdomain=tenant.subdomain, status=status, migrations=outcome.migrations,
            archive=archive.storage_name if archive is not None else "",
        )  # fmt: skip
    tenant.status = status
    tenant_cache_invalidate(tenant.schema_name)
    routes_changed()
    logger.info("tenant restored", extra={"tenant_id": str(tenant.id), "status": status})
    return RestoreResult(
        tenant=tenant, archive=archive, migrations=outcome.migrations,
        seconds=time.monotonic() - started,
    )  # fmt: skip


def _schema_from_archive(tenant: Tenant, archive: TenantArchive) -> None:
    with tempfile.TemporaryDirectory(prefix="tenant-restore-") as folder:
        dump = Path(folder) / "schema.pgdump"
        try:
            with (
                tenant_context(tenant),
                default_storage.open(archive.storage_name, "rb") as source,
                dump.open("wb") as target,
            ):
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    target.write(chunk)
        except FileNotFoundError:
            raise ArchiveMissingError(
                f"the archive file of '{tenant.subdomain}' ({archive.storage_name}) is missing"
            ) from None
        if _sha256(dump)[0] != archive.sha256:
            raise ArchiveCorruptError(
                f"the archive of '{tenant.subdomain}' does not match its checksum; not restored"
            )
        with public_context():
            schemas.schema_restore_archive(tenant.schema_name, str(dump))


# -- delete -------------------------------------------------------------------------------


def tenant_delete(*, tenant: Tenant, actor: str, force: bool = False) -> DeleteResult:
    """Remove a tenant for good: schema, files (archives too), cache entries and rows.

    Raises:
        TenantStateError: the tenant is not archived and `force` is not set, or it still
            has a live paid subscription.
    """
    return _audited("tenant.delete", tenant, actor, lambda: _delete(tenant, actor, force))


def _delete(tenant: Tenant, actor: str, force: bool) -> DeleteResult:
    from shared_apps.billing.selectors import billing_live_subscription

    with public_context():
        tenant.refresh_from_db()
    if tenant.status != Status.ARCHIVED and not force:
        raise TenantStateError(
            f"'{tenant.subdomain}' is {tenant.status}; only archived tenants can be deleted "
            "(archive it first, or add --force)."
        )
    subscription = billing_live_subscription(tenant.id)
    if subscription:
        raise TenantStateError(
            f"'{tenant.subdomain}' has a live subscription ({subscription}); cancel it in "
            "Stripe before deleting the tenant."
        )
    with public_context():  # stop serving it before its files go
        Tenant.objects.filter(pk=tenant.pk).update(status=Status.ARCHIVED)
    routes_changed()
    with tenant_context(tenant):
        files = tenant_media_purge()
    keys = tenant_cache_purge(tenant.schema_name)
    tenant_id, subdomain, previous = str(tenant.id), tenant.subdomain, tenant.status
    with public_context(), transaction.atomic():
        schemas.schema_drop(tenant.schema_name)
        Tenant.objects.filter(pk=tenant.pk).delete()  # domains and records go with it
        audit_record(
            actor=actor, action="tenant.delete", outcome="succeeded", tenant_id=tenant.id,
            subdomain=subdomain, forced=force, previous_status=previous, files_deleted=files,
            cache_keys_deleted=keys,
        )  # fmt: skip
    routes_changed()
    logger.info("tenant deleted", extra={"tenant_id": tenant_id, "subdomain": subdomain})
    return DeleteResult(
        tenant_id=tenant_id, subdomain=subdomain, files_deleted=files, cache_keys_deleted=keys
    )


# -- export -------------------------------------------------------------------------------


def exported_models() -> list[type[Model]]:
    """The tenant's own data: every model of the tenant apps, minus secrets and bookkeeping."""
    labels = set()
    for name in settings.TENANT_APPS:
        config = apps.get_containing_app_config(name)
        if config is not None and config.label not in EXPORT_EXCLUDED_APPS:
            labels.add(config.label)
    return [
        model
        for model in apps.get_models()
        if model._meta.app_label in labels
        and model._meta.label_lower not in EXPORT_EXCLUDED_MODELS
        and not model._meta.proxy
    ]


def tenant_export(*, tenant: Tenant, actor: str, output: Path) -> ExportResult:
    """Write a portable zip of the tenant's data: JSON per model plus its files.

    Raises:
        TenantStateError: the tenant is archived (restore it first).
        ExportTargetExistsError: `output` exists.
    """
    return _audited("tenant.export", tenant, actor, lambda: _export(tenant, actor, output))


def _export(tenant: Tenant, actor: str, output: Path) -> ExportResult:
    started = time.monotonic()
    if tenant.status in (Tenant.Status.ARCHIVED, Tenant.Status.PROVISIONING):
        raise TenantStateError(
            f"'{tenant.subdomain}' is {tenant.status}; restore it before exporting."
        )
    if output.exists():
        raise ExportTargetExistsError(f"{output} exists; choose another --output")
    counts: dict[str, int] = {}
    files = 0
    with _writing(output) as archive, tenant_context(tenant), _one_snapshot():
        for model in exported_models():
            label = model._meta.label_lower
            fields = [
                field.name
                for field in model._meta.local_fields
                if field.name not in EXPORT_EXCLUDED_FIELDS.get(label, set())
                and not field.primary_key
            ] + [field.name for field in model._meta.local_many_to_many]
            rows = model._default_manager.order_by("pk")
            counts[label] = rows.count()
            archive.writestr(
                f"data/{label}.json",
                serializers.serialize("json", rows, fields=fields, indent=1),
            )
        for name in tenant_media_names():
            if name.startswith(f"{PLATFORM_FOLDER}/"):
                continue
            with (
                default_storage.open(name, "rb") as source,
                archive.open(f"files/{name}", "w") as target,
            ):
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    target.write(chunk)
            files += 1
        archive.writestr(
            "manifest.json",
            json.dumps(
                {
                    "format": EXPORT_FORMAT, "tenant_id": str(tenant.id),
                    "subdomain": tenant.subdomain, "name": tenant.name,
                    "exported_at": timezone.now().isoformat(), "models": counts, "files": files,
                },
                indent=2,
            ),
        )  # fmt: skip
    size = output.stat().st_size
    audit_record(
        actor=actor, action="tenant.export", outcome="succeeded", tenant_id=tenant.id,
        subdomain=tenant.subdomain, files=files, size_bytes=size, models=counts,
    )  # fmt: skip
    return ExportResult(
        path=output, models=counts, files=files, size_bytes=size,
        seconds=time.monotonic() - started,
    )  # fmt: skip


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """A read-only REPEATABLE READ transaction: every model is read from the same moment."""
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    previous = (raw.isolation_level, raw.read_only)
    raw.isolation_level, raw.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
    try:
        with transaction.atomic():
            yield
    finally:
        raw.isolation_level, raw.read_only = previous


@contextmanager
def _writing(output: Path) -> Iterator[zipfile.ZipFile]:
    """A zip written beside `output` and moved into place only once complete."""
    partial = output.with_name(f".{output.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            yield archive
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
