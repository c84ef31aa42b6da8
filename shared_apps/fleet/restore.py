"""Restore an archived tenant: its schema back from the newest archive, then migrated.

The tenant gets back the status it had when archived (active, or suspended). Interrupted,
a restore continues from where it stopped when run again. An archive in the template's
format (`snapshot`) is replayed in one transaction; a pg_dump archive with pg_restore.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from shared_apps.fleet.archive import file_sha256
from shared_apps.fleet.errors import ArchiveCorruptError, ArchiveMissingError
from shared_apps.fleet.migrate.compiler import SchemaMigrator
from shared_apps.fleet.migrate.ledger import (
    TenantTarget,
    tenant_migration_mark_pending,
    tenant_migration_record_state,
)
from shared_apps.fleet.operations import tenant_operation
from shared_apps.fleet.provisioning import TEMPLATE
from shared_apps.fleet.snapshot import snapshot_restore
from shared_apps.tenants.errors import TenantStateInvalidError
from shared_apps.tenants.models import Tenant, TenantArchive
from tenancy import public_context, schemas, tenant_context
from tenancy.cache import tenant_cache_invalidate
from tenancy.host_routes import routes_changed

logger = logging.getLogger(__name__)

Status = Tenant.Status


@dataclass(frozen=True)
class RestoreResult:
    tenant: Tenant
    archive: TenantArchive | None
    migrations: list[str]
    seconds: float


def tenant_restore(
    *, actor: str, tenant: Tenant | None = None, subdomain: str = ""
) -> RestoreResult:
    """Recreate an archived tenant's schema from its newest archive and serve it again.

    The schema is brought to the current migrations first; the tenant gets back the status
    it had when archived. A restore that stopped half-way continues when run again. Name
    the tenant by instance or, for operators, by subdomain.

    Raises:
        TenantNotFoundError: no tenant has `subdomain`.
        TenantStateInvalidError: the tenant is not archived, or its schema cannot be migrated.
        ArchiveMissingError, ArchiveCorruptError, OperationFailedError.
    """
    with tenant_operation(
        "tenant.restore", actor=actor, tenant=tenant, subdomain=subdomain
    ) as operation:
        result = _restore(operation.tenant)
        operation.detail.update(
            status=result.tenant.status,
            migrations=result.migrations,
            archive=result.archive.storage_name if result.archive is not None else "",
        )
    return result


def _restore(tenant: Tenant) -> RestoreResult:
    started = time.monotonic()
    with public_context():
        tenant.refresh_from_db()
        if tenant.status != Status.ARCHIVED:
            raise TenantStateInvalidError(
                f"'{tenant.subdomain}' is {tenant.status}; only archived tenants can be restored."
            )
        archive = tenant.archives.filter(restored_at__isnull=True).first()
        schema_present = schemas.schema_exists(tenant.schema_name)
    if not schema_present:  # else: an earlier restore recreated it and stopped after
        if archive is None:
            raise ArchiveMissingError(f"'{tenant.subdomain}' has no archive to restore from.")
        _schema_from_archive(tenant, archive)

    migrations = _migrated(tenant, archive)
    status = archive.previous_status if archive is not None else Status.ACTIVE
    with public_context(), transaction.atomic():
        if archive is not None:
            archive.restored_at = timezone.now()
            archive.save(update_fields=["restored_at"])
        Tenant.objects.filter(pk=tenant.pk).update(status=status, updated_at=timezone.now())
    tenant.status = status
    tenant_cache_invalidate(tenant.schema_name)
    routes_changed()
    logger.info("tenant restored", extra={"tenant_id": str(tenant.id), "status": status})
    return RestoreResult(
        tenant=tenant,
        archive=archive,
        migrations=migrations,
        seconds=time.monotonic() - started,
    )


def _migrated(tenant: Tenant, archive: TenantArchive | None) -> list[str]:
    """Bring the restored schema to the migrations on disk; return those applied.

    An archive in the template's format holds a schema exactly at its migration state:
    when that is the state on disk, nothing is to be done but to record it.

    Raises:
        TenantStateInvalidError: the schema cannot be migrated (it stays archived).
    """
    target = TEMPLATE.expected_state()
    exact = archive is not None and archive.format == TenantArchive.Format.TEMPLATE_COPY
    if exact and archive is not None and archive.migration_state == target:
        tenant_migration_record_state(tenant, target)
        return []
    tenant_migration_mark_pending(tenant)
    outcome = SchemaMigrator(target_state=target).migrate(TenantTarget.of(tenant))
    if outcome.status == "failed":
        raise TenantStateInvalidError(
            f"'{tenant.subdomain}' was restored but not migrated ({outcome.error}); it stays "
            "archived: fix the cause and run restore again."
        )
    return outcome.migrations


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
        if file_sha256(dump)[0] != archive.sha256:
            raise ArchiveCorruptError(
                f"the archive of '{tenant.subdomain}' does not match its checksum; not restored"
            )
        with public_context():
            if archive.format == TenantArchive.Format.TEMPLATE_COPY:
                with transaction.atomic():
                    snapshot_restore(tenant, dump)
            else:
                schemas.schema_restore_archive(tenant.schema_name, str(dump))
