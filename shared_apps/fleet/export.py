"""Export a tenant for data portability: a zip with one JSON file per model and its files.

Secrets and bookkeeping are left out; the platform's own files (archives) too. The zip is
written beside its target and moved into place when complete.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from shared_apps.fleet.archive import PLATFORM_FOLDER
from shared_apps.fleet.errors import ExportTargetExistsError
from shared_apps.fleet.operations import tenant_operation
from shared_apps.tenants.errors import TenantStateInvalidError
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenancy.storage import tenant_media_names

EXPORT_FORMAT = 1

# Models not exported: secrets (second factors), security logs and framework bookkeeping.
EXPORT_EXCLUDED_APPS = {"contenttypes", "sessions", "admin", "otp_static", "otp_totp", "axes"}
EXPORT_EXCLUDED_MODELS = {"auth.permission", "auth.group"}
EXPORT_EXCLUDED_FIELDS = {"accounts.user": {"password"}}


@dataclass(frozen=True)
class ExportResult:
    tenant: Tenant
    path: Path
    models: dict[str, int]
    files: int
    size_bytes: int
    seconds: float


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


def tenant_export(
    *, actor: str, tenant: Tenant | None = None, subdomain: str = "", output: Path | None = None
) -> ExportResult:
    """Write a portable zip of the tenant's data: JSON per model plus its files.

    Name the tenant by instance or, for operators, by subdomain. Without `output`, the zip
    is `<subdomain>-<time>.zip` in EXPORT_DIR (`.devdata/exports/` unless configured), never
    the working directory, which may be a checkout where a customer's data must not land.

    Raises:
        TenantNotFoundError: no tenant has `subdomain`.
        TenantStateInvalidError: the tenant is archived (restore it first).
        ExportTargetExistsError: `output` exists.
        OperationFailedError: the database or storage failed.
    """
    with tenant_operation(
        "tenant.export", actor=actor, tenant=tenant, subdomain=subdomain
    ) as operation:
        named = operation.tenant
        if output is None:
            folder = Path(settings.EXPORT_DIR)
            folder.mkdir(parents=True, exist_ok=True)
            output = folder / f"{named.subdomain}-{timezone.now().strftime('%Y%m%dT%H%M%SZ')}.zip"
        result = _export(named, output.resolve())
        operation.detail.update(
            files=result.files, size_bytes=result.size_bytes, models=result.models
        )
    return result


def _export(tenant: Tenant, output: Path) -> ExportResult:
    started = time.monotonic()
    if tenant.status in (Tenant.Status.ARCHIVED, Tenant.Status.PROVISIONING):
        raise TenantStateInvalidError(
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
        manifest = {
            "format": EXPORT_FORMAT,
            "tenant_id": str(tenant.id),
            "subdomain": tenant.subdomain,
            "name": tenant.name,
            "exported_at": timezone.now().isoformat(),
            "models": counts,
            "files": files,
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
    return ExportResult(
        tenant=tenant,
        path=output,
        models=counts,
        files=files,
        size_bytes=output.stat().st_size,
        seconds=time.monotonic() - started,
    )


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
