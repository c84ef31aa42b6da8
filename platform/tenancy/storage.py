"""Media files under a per-tenant prefix: `tenants/<tenant id>/<name>`.

Names stored in the database are relative (`attachments/ab12/report.pdf`); the storage
adds the active tenant's prefix at every access. A name copied from one tenant resolves
inside another tenant's prefix there, and is simply not found: isolation by construction.
With no tenant active, every access raises (NoActiveTenantError).

Private files are never served by a public URL: `tenant_file_url` returns a short-lived
signed link, bound to the tenant's host, to be handed out only after the caller's
permission check.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

from django.core import signing
from django.core.files.storage import FileSystemStorage, default_storage, storages
from django.urls import reverse
from django.utils.http import content_disposition_header
from storages.backends.s3 import S3Storage

from tenancy.context import require_tenant

SALT = "tenancy.files"
# Lifetime of the presigned S3 URL a checked link redirects to: just enough to follow it.
S3_REDIRECT_SECONDS = 30


def tenant_prefix() -> str:
    return f"tenants/{require_tenant().id}"


class TenantS3Storage(S3Storage):
    """django-storages' S3 backend whose location is the active tenant's prefix."""

    @property
    def location(self) -> str:
        base = self.__dict__.get("_base_location")
        if base is None:  # during __init__: let the base class assign the configured value
            raise AttributeError("location")
        base = base.strip("/")
        return f"{base}/{tenant_prefix()}" if base else tenant_prefix()

    @location.setter
    def location(self, value: str) -> None:
        self._base_location = value or ""


class TenantFileSystemStorage(FileSystemStorage):
    """Local files under MEDIA_ROOT/tenants/<tenant id>/ (the embedded default)."""

    @property
    def location(self) -> str:
        return os.path.abspath(os.path.join(self.base_location, tenant_prefix()))

    @property
    def base_url(self) -> str:
        raise NotImplementedError("tenant files have no public URL; use tenant_file_url()")


def tenant_file_url(name: str, *, expires_in: int = 60, filename: str | None = None) -> str:
    """Return a link that serves the active tenant's file `name` for `expires_in` seconds.

    The link is signed, names its tenant and is only valid on that tenant's host; the
    view behind it streams a local file or redirects to an S3 URL presigned for
    S3_REDIRECT_SECONDS. Hand it out only after the caller's permission check.
    """
    token = signing.dumps(
        {"t": str(require_tenant().id), "n": name, "f": filename, "e": expires_in}, salt=SALT
    )
    return reverse("files-serve", args=[token])


def tenant_file_redirect_url(name: str, *, filename: str | None) -> str | None:
    """Return a presigned S3 URL for the file, or None when files are stored locally."""
    storage = getattr(default_storage, "_wrapped", default_storage)
    if not isinstance(storage, TenantS3Storage):
        return None
    params: dict[str, Any] = {}
    if filename:
        params["ResponseContentDisposition"] = content_disposition_header(
            as_attachment=True, filename=filename
        )
    return str(storage.url(name, parameters=params or None, expire=S3_REDIRECT_SECONDS))


def tenant_file_token_load(token: str) -> tuple[str, str | None]:
    """Return (name, download filename) of a local signed link for the active tenant.

    Raises:
        signing.BadSignature: forged, expired, or issued in another tenant.
    """
    payload = signing.loads(token, salt=SALT, max_age=3600)
    # The link's own lifetime, checked again with the stricter value it was issued with.
    signing.loads(token, salt=SALT, max_age=int(payload["e"]))
    if payload["t"] != str(require_tenant().id):
        raise signing.BadSignature("issued in another tenant")
    return str(payload["n"]), payload.get("f")


def tenant_media_names(directory: str = "") -> Iterator[str]:
    """Yield the name of every file under the active tenant's prefix (recursively)."""
    try:
        folders, files = default_storage.listdir(directory)
    except FileNotFoundError:  # local storage: the tenant never stored a file
        return
    for name in files:
        yield f"{directory}/{name}" if directory else name
    for folder in folders:
        yield from tenant_media_names(f"{directory}/{folder}" if directory else folder)


def tenant_media_purge() -> int:
    """Delete every file under the active tenant's prefix; return how many were deleted."""
    storage = storages["default"]
    if isinstance(storage, TenantS3Storage):
        bucket = storage.bucket
        prefix = storage.location.rstrip("/") + "/"
        deleted = 0
        for batch in _batches(bucket.objects.filter(Prefix=prefix), 1000):
            answer = bucket.delete_objects(
                Delete={"Objects": [{"Key": obj.key} for obj in batch], "Quiet": True}
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise OSError(
                    f"S3 kept {len(answer['Errors'])} file(s) under {prefix}, e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
            deleted += len(batch)
        return deleted
    location = str(getattr(storage, "location", ""))
    if not location or not os.path.isdir(location):
        return 0
    count = sum(len(files) for _, _, files in os.walk(location))
    shutil.rmtree(location)
    return count


def _batches(items: Any, size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
