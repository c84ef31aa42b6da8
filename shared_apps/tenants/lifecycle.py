"""The end of a tenant's life: archive, restore, delete, and export for data portability.

All of them work on one tenant at a time (a whole-database pg_dump fails on a large fleet),
and each writes an audit record, whether it succeeds or fails.

- archive: stop serving the tenant, dump its schema to storage under the tenant's prefix,
  then drop the schema. Its files and the dump stay; restore brings it back.
- restore: recreate the schema from the newest archive, bring it to the current
  migrations, serve it again.
- delete: remove the schema, every file under the tenant's prefix (archives included),
  its cache namespace and its rows in the public schema. Only archived tenants, unless
  forced.
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
from typing import Any, TypeVar

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from core.errors import AppError
from shared_apps.audit.services import audit_record
from shared_apps.tenants.errors import TenantStateError
from shared_apps.tenants.migrator import (
    SchemaMigrator,
    TenantTarget,
    tenant_migration_mark_pending,
)
from shared_apps.tenants.models import Tenant, TenantArchive
from shared_apps.tenants.provisioning import TEMPLATE
from tenancy import public_context, schemas, tenant_context
from tenancy.cache import tenant_cache_invalidate, tenant_cache_purge
from tenancy.routing import routes_changed
from tenancy.storage import tenant_media_names, tenant_media_purge

logger = logging.getLogger(__name__)

# Under each tenant's media prefix, the platform's own files (archives) live here: never
# exported, never handed out by the application.
PLATFORM_FOLDER = "_platform"
ARCHIVE_FOLDER = f"{PLATFORM_FOLDER}/archives"
EXPORT_FORMAT = 1

# Models not exported: secrets (second factors), security logs and framework bookkeeping.
EXPORT_EXCLUDED_APPS = {"contenttypes", "sessions", "admin", "otp_static", "otp_totp", "axes"}
EXPORT_EXCLUDED_MODELS = {"auth.permission", "auth.group"}
EXPORT_EXCLUDED_FIELDS = {"accounts.user": {"password"}}

Result = TypeVar("Result")


class ArchiveMissingError(AppError):
    code, status, title = "archive_missing", 409, "No archive to restore"


class ExportTargetExistsError(AppError):
    code, status, title = "export_target_exists", 409, "Export file exists"


@dataclass(frozen=True)
class ArchiveResult:
    tenant: Tenant
    archive: TenantArchive
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    tenant: Tenant
    archive: TenantArchive
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
    """Run `work`; record its outcome (and the error's code when it fails) in the audit log."""
    try:
        result = work()
    except AppError as error:
        audit_record(
            actor=actor, action=action, outcome="failed", tenant_id=tenant.id,
            subdomain=tenant.subdomain, error=error.code, detail=error.detail,
        )  # fmt: skip
        raise
    except Exception as error:
        audit_record(
            actor=actor, action=action, outcome="failed", tenant_id=tenant.id,
            subdomain=tenant.subdomain, error="internal_error", detail=str(error)[:2000],
        )  # fmt: skip
        raise
    return result


def _status_set(tenant: Tenant, status: str, *, allowed: set[str], verb: str) -> str:
    """Move the tenant to `status` under a row lock; return the status it had."""
    with public_context(), transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if locked.status not in allowed:
            raise TenantStateError(
                f"'{locked.subdomain}' is {locked.status}; only "
                f"{' or '.join(sorted(allowed))} tenants can be {verb}."
            )
        previous = locked.status
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
    tenant.status = status
    return previous


def _stop_serving_wait() -> None:
    """Give every process time to notice the new status before the schema is touched."""
    time.sleep(settings.TENANT_ROUTE_RECHECK_SECONDS)


# -- archive and restore ------------------------------------------------------------------


def tenant_archive(*, tenant: Tenant, actor: str) -> ArchiveResult:
    """Dump the tenant's schema to storage, then drop the schema. Nothing else is deleted.

    Raises:
        TenantStateError: the tenant is archived already (or still provisioning).
    """
    return _audited("tenant.archive", tenant, actor, lambda: _archive(tenant, actor))


def _archive(tenant: Tenant, actor: str) -> ArchiveResult:
    started = time.monotonic()
    previous = _status_set(
        tenant, Tenant.Status.ARCHIVED, allowed={"active", "suspended"}, verb="archived"
    )
    try:
        if previous == Tenant.Status.ACTIVE:  # a suspended tenant takes no writes already
            _stop_serving_wait()
        with tempfile.TemporaryDirectory(prefix="tenant-archive-") as folder:
            dump = Path(folder) / "schema.pgdump"
            schemas.schema_dump_archive(tenant.schema_name, str(dump))
            digest = _sha256(dump)
            stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
            with tenant_context(tenant), dump.open("rb") as handle:
                name = default_storage.save(f"{ARCHIVE_FOLDER}/{stamp}.pgdump", File(handle))
        with public_context(), transaction.atomic():
            archive = TenantArchive.objects.create(
                tenant=tenant, storage_name=name, size_bytes=digest["size"],
                sha256=digest["sha256"], migration_state=_recorded_state(tenant),
            )  # fmt: skip
            schemas.schema_drop(tenant.schema_name)
            audit_record(
                actor=actor, action="tenant.archive", outcome="succeeded", tenant_id=tenant.id,
                subdomain=tenant.subdomain, archive=name, size_bytes=archive.size_bytes,
                sha256=archive.sha256,
            )  # fmt: skip
    except Exception:
        _status_set(tenant, previous, allowed={"archived"}, verb="put back")
        raise
    tenant_cache_invalidate(tenant.schema_name)
    routes_changed()
    logger.info("tenant archived", extra={"tenant_id": str(tenant.id), "archive": name})
    return ArchiveResult(tenant=tenant, archive=archive, seconds=time.monotonic() - started)


def _sha256(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"sha256": digest.hexdigest(), "size": size}


def _recorded_state(tenant: Tenant) -> str:
    record = getattr(tenant, "migration", None)
    return record.migration_state if record is not None else ""


def tenant_restore(*, tenant: Tenant, actor: str) -> RestoreResult:
    """Recreate an archived tenant's schema from its newest archive and serve it again.

    The schema is brought to the current migrations before the tenant is served.

    Raises:
        TenantStateError: the tenant is not archived. ArchiveMissingError: no archive.
    """
    return _audited("tenant.restore", tenant, actor, lambda: _restore(tenant, actor))


def _restore(tenant: Tenant, actor: str) -> RestoreResult:
    started = time.monotonic()
    with public_context():
        tenant.refresh_from_db()
        if tenant.status != Tenant.Status.ARCHIVED:
            raise TenantStateError(
                f"'{tenant.subdomain}' is {tenant.status}; only archived tenants can be restored."
            )
        archive = tenant.archives.filter(restored_at__isnull=True).first()
    if archive is None:
        raise ArchiveMissingError(f"'{tenant.subdomain}' has no archive to restore from.")
    with tempfile.TemporaryDirectory(prefix="tenant-restore-") as folder:
        dump = Path(folder) / "schema.pgdump"
        with (
            tenant_context(tenant),
            default_storage.open(archive.storage_name, "rb") as source,
            dump.open("wb") as target,
        ):
            for chunk in iter(lambda: source.read(1 << 20), b""):
                target.write(chunk)
        if _sha256(dump)["sha256"] != archive.sha256:
            raise ArchiveMissingError(
                f"the archive of '{tenant.subdomain}' does not match its checksum; not restored"
            )
        with public_context():
            schemas.schema_restore_archive(tenant.schema_name, str(dump))
    try:
        tenant_migration_mark_pending(tenant)
        outcome = SchemaMigrator(target_state=TEMPLATE.expected_state()).migrate(
            TenantTarget.of(tenant)
        )
        if outcome.status == "failed":
            raise TenantStateError(
                f"'{tenant.subdomain}' was restored but could not be migrated: {outcome.error}"
            )
        with public_context(), transaction.atomic():
            archive.restored_at = timezone.now()
            archive.save(update_fields=["restored_at"])
            _status_set(tenant, Tenant.Status.ACTIVE, allowed={"archived"}, verb="restored")
            audit_record(
                actor=actor, action="tenant.restore", outcome="succeeded", tenant_id=tenant.id,
                subdomain=tenant.subdomain, archive=archive.storage_name,
                migrations=outcome.migrations,
            )  # fmt: skip
    except Exception:
        with public_context():
            schemas.schema_drop(tenant.schema_name)  # stays archived; the archive is intact
        raise
    tenant_cache_invalidate(tenant.schema_name)
    routes_changed()
    logger.info("tenant restored", extra={"tenant_id": str(tenant.id)})
    return RestoreResult(
        tenant=tenant, archive=archive, migrations=outcome.migrations,
        seconds=time.monotonic() - started,
    )  # fmt: skip


# -- delete -------------------------------------------------------------------------------


def tenant_delete(*, tenant: Tenant, actor: str, force: bool = False) -> DeleteResult:
    """Remove a tenant for good: schema, files (archives too), cache entries and rows.

    Raises:
        TenantStateError: the tenant is not archived and `force` is not set.
    """
    return _audited("tenant.delete", tenant, actor, lambda: _delete(tenant, actor, force))


def _delete(tenant: Tenant, actor: str, force: bool) -> DeleteResult:
    allowed = {"archived"} | ({"active", "suspended", "provisioning"} if force else set())
    previous = _status_set(tenant, Tenant.Status.ARCHIVED, allowed=allowed, verb="deleted")
    if previous == Tenant.Status.ACTIVE:
        _stop_serving_wait()
    with tenant_context(tenant):
        files = tenant_media_purge()
    keys = tenant_cache_purge(tenant.schema_name)
    tenant_id, subdomain = str(tenant.id), tenant.subdomain
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
    with _writing(output) as archive, tenant_context(tenant), transaction.atomic():
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
def _writing(output: Path) -> Iterator[zipfile.ZipFile]:
    """A zip written beside `output` and moved into place only once complete."""
    partial = output.with_name(f".{output.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            yield archive
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
