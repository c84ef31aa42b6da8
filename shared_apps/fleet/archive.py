"""Archive a tenant: its schema dumped to storage, then dropped. Nothing else is deleted.

In one transaction, lock the tenant's tables against writes, dump its schema from that
exact snapshot, store the dump under the tenant's media prefix, mark the tenant archived
and drop the schema. Interrupted anywhere, nothing has changed. Its files stay.

A schema that is exactly what its provisioning template makes is dumped as the template's
DDL plus each table's COPY data (`snapshot`, well under a second however large the fleet);
one that drifted from it, or is not at the template's migrations, with `pg_dump` (whose
time grows with the whole catalog of the database).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from shared_apps.fleet.operations import tenant_operation
from shared_apps.fleet.snapshot import snapshot_plan, snapshot_write
from shared_apps.tenants.errors import TenantStateInvalidError
from shared_apps.tenants.models import Tenant, TenantArchive
from tenancy import public_context, schemas, tenant_context
from tenancy.cache import tenant_cache_invalidate
from tenancy.host_routes import routes_changed

logger = logging.getLogger(__name__)

# Under each tenant's media prefix, the platform's own files (archives) live here: never
# exported, never handed out by the application.
PLATFORM_FOLDER = "_platform"
ARCHIVE_FOLDER = f"{PLATFORM_FOLDER}/archives"
# Archiving waits this long for the tenant's running writes to finish, then gives up
# (nothing changes; try again).
ARCHIVE_LOCK_TIMEOUT = "30s"
ARCHIVE_ATTEMPTS = 3

Status = Tenant.Status


@dataclass(frozen=True)
class ArchiveResult:
    tenant: Tenant
    archive: TenantArchive
    seconds: float
    pg_dump_reason: str = ""  # why the fast format was not used, if it was not


def tenant_archive(
    *, actor: str, tenant: Tenant | None = None, subdomain: str = "", pg_dump: bool = False
) -> ArchiveResult:
    """Dump the tenant's schema to storage, then drop the schema. Nothing else is deleted.

    Name the tenant by instance or, for operators, by subdomain. The schema is dumped from
    its template when it matches it, else (or with `pg_dump`) with pg_dump.

    Raises:
        TenantNotFoundError: no tenant has `subdomain`.
        TenantStateInvalidError: the tenant is not active or suspended.
        OperationFailedError: the dump, the upload or the database failed (nothing changed).
    """
    with tenant_operation(
        "tenant.archive", actor=actor, tenant=tenant, subdomain=subdomain
    ) as operation:
        result, previous = _archive(operation.tenant, pg_dump=pg_dump)
        operation.detail.update(
            archive=result.archive.storage_name,
            format=result.archive.format,
            pg_dump_reason=result.pg_dump_reason,
            size_bytes=result.archive.size_bytes,
            sha256=result.archive.sha256,
            previous_status=previous,
        )
    return result


def _archive(tenant: Tenant, *, pg_dump: bool) -> tuple[ArchiveResult, str]:
    """Archive, trying again when the table locks deadlock with the tenant's own writes
    (PostgreSQL then cancels one side; when it is the archive, nothing has changed yet)."""
    for attempt in range(1, ARCHIVE_ATTEMPTS + 1):
        try:
            return _archive_once(tenant, pg_dump=pg_dump)
        except OperationalError as error:
            if attempt == ARCHIVE_ATTEMPTS or not isinstance(
                error.__cause__, psycopg.errors.DeadlockDetected
            ):
                raise
            logger.warning(
                "archive deadlocked with a write; trying again",
                extra={"tenant_id": str(tenant.id), "attempt": attempt},
            )
    raise AssertionError("unreachable")


def _archive_once(tenant: Tenant, *, pg_dump: bool) -> tuple[ArchiveResult, str]:
    started = time.monotonic()
    stored: str | None = None
    try:
        with public_context(), transaction.atomic():
            locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
            if locked.status not in (Status.ACTIVE, Status.SUSPENDED):
                raise TenantStateInvalidError(
                    f"'{locked.subdomain}' is {locked.status}; only active or suspended "
                    "tenants can be archived."
                )
            previous = locked.status
            _writes_stopped(locked.schema_name)
            plan, reason = (None, "asked for pg_dump") if pg_dump else snapshot_plan(locked)
            with tempfile.TemporaryDirectory(prefix="tenant-archive-") as folder:
                if plan is not None:
                    dump, kind = Path(folder) / "schema.tar.gz", TenantArchive.Format.TEMPLATE_COPY
                    snapshot_write(locked, plan, dump)
                else:
                    dump, kind = Path(folder) / "schema.pgdump", TenantArchive.Format.PG_DUMP
                    schemas.schema_dump_archive(
                        locked.schema_name, str(dump), snapshot=_snapshot_exported()
                    )
                digest, size = file_sha256(dump)
                stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
                suffix = dump.name.partition(".")[2]
                with tenant_context(locked), dump.open("rb") as handle:
                    stored = default_storage.save(
                        f"{ARCHIVE_FOLDER}/{stamp}.{suffix}", File(handle)
                    )
            locked.status = Status.ARCHIVED
            locked.save(update_fields=["status", "updated_at"])
            archive = TenantArchive.objects.create(
                tenant=locked,
                storage_name=stored,
                size_bytes=size,
                sha256=digest,
                format=kind,
                migration_state=plan.migration_state if plan else _recorded_state(locked),
                previous_status=previous,
            )
            schemas.schema_drop(locked.schema_name)
    except BaseException:
        if stored is not None:  # the transaction rolled back: the upload is an orphan
            _delete_quietly(tenant, stored)
        raise
    tenant.status = Status.ARCHIVED
    tenant_cache_invalidate(tenant.schema_name)
    routes_changed()
    logger.info(
        "tenant archived",
        extra={"tenant_id": str(tenant.id), "archive": stored, "format": kind, "why": reason},
    )
    result = ArchiveResult(
        tenant=tenant,
        archive=archive,
        seconds=time.monotonic() - started,
        pg_dump_reason=reason,
    )
    return result, previous


def _writes_stopped(schema_name: str) -> None:
    """Lock the schema's tables against writes until the transaction ends: what is dumped
    next holds every committed write.

    SHARE mode: it waits for running writes to commit and blocks new ones, while reads and
    the row locks of foreign-key checks (deferred to commit) go on. The tables are found
    through their dependency on the schema (an index probe; pg_class has no index on the
    namespace and holds every tenant's relations).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_catalog.set_config('lock_timeout', %s, true)", [ARCHIVE_LOCK_TIMEOUT]
        )
        cursor.execute(
            "SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname) "
            "FROM pg_catalog.pg_namespace n "
            "JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_namespace'::regclass "
            " AND d.refobjid = n.oid AND d.classid = 'pg_catalog.pg_class'::regclass "
            "JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'p') "
            "WHERE n.nspname = %s ORDER BY c.relname",
            [schema_name],
        )
        tables = [row[0] for row in cursor.fetchall()]
        if tables:
            cursor.execute(f"LOCK TABLE {', '.join(tables)} IN SHARE MODE")


def _snapshot_exported() -> str:
    """This transaction's snapshot, for pg_dump to share (`--snapshot`)."""
    with connection.cursor() as cursor:
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


def file_sha256(path: Path) -> tuple[str, int]:
    """Return the file's SHA-256 (hex) and its size in bytes, read in 1 MiB blocks."""
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
