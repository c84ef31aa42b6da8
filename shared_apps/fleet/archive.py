"""Archive a tenant: its schema dumped to storage, then dropped. Nothing else is deleted.

In one transaction, lock the tenant's tables against writes, dump its schema from that
exact snapshot, store the dump under the tenant's media prefix, mark the tenant archived
and drop the schema. Interrupted anywhere, nothing has changed. Its files stay.
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


def tenant_archive(
    *, actor: str, tenant: Tenant | None = None, subdomain: str = ""
) -> ArchiveResult:
    """Dump the tenant's schema to storage, then drop the schema. Nothing else is deleted.

    Name the tenant by instance or, for operators, by subdomain.

    Raises:
        TenantNotFoundError: no tenant has `subdomain`.
        TenantStateInvalidError: the tenant is not active or suspended.
        OperationFailedError: the dump, the upload or the database failed (nothing changed).
    """
    with tenant_operation(
        "tenant.archive", actor=actor, tenant=tenant, subdomain=subdomain
    ) as operation:
        result, previous = _archive(operation.tenant)
        operation.detail.update(
            archive=result.archive.storage_name,
            size_bytes=result.archive.size_bytes,
            sha256=result.archive.sha256,
            previous_status=previous,
        )
    return result


def _archive(tenant: Tenant) -> tuple[ArchiveResult, str]:
    """Archive, trying again when the table locks deadlock with the tenant's own writes
    (PostgreSQL then cancels one side; when it is the archive, nothing has changed yet)."""
    for attempt in range(1, ARCHIVE_ATTEMPTS + 1):
        try:
            return _archive_once(tenant)
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


def _archive_once(tenant: Tenant) -> tuple[ArchiveResult, str]:
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
            snapshot = _writes_stopped(locked.schema_name)
            with tempfile.TemporaryDirectory(prefix="tenant-archive-") as folder:
                dump = Path(folder) / "schema.pgdump"
                schemas.schema_dump_archive(locked.schema_name, str(dump), snapshot=snapshot)
                digest, size = file_sha256(dump)
                stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
                with tenant_context(locked), dump.open("rb") as handle:
                    stored = default_storage.save(f"{ARCHIVE_FOLDER}/{stamp}.pgdump", File(handle))
            locked.status = Status.ARCHIVED
            locked.save(update_fields=["status", "updated_at"])
            archive = TenantArchive.objects.create(
                tenant=locked,
                storage_name=stored,
                size_bytes=size,
                sha256=digest,
                migration_state=_recorded_state(locked),
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
    logger.info("tenant archived", extra={"tenant_id": str(tenant.id), "archive": stored})
    result = ArchiveResult(tenant=tenant, archive=archive, seconds=time.monotonic() - started)
    return result, previous


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
