"""Attachments live under their tenant's prefix and are served only through checked links."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import NoActiveTenantError, tenant_context
from tenancy.storage import tenant_file_url
from tenant_apps.projects.models import Attachment, Project
from tests.factories import ProjectFactory
from tests.infra import BUCKET


def signed_in(tenant: Tenant) -> Client:
    client = Client(HTTP_HOST=f"{tenant.subdomain}.localhost")
    with tenant_context(tenant):
        client.force_login(User.objects.get(email=f"owner@{tenant.subdomain}.test"))
    return client


def upload(client: Client, project: Project, name: str, body: bytes) -> None:
    response = client.post(
        f"/projects/{project.pk}/attachments/",
        {"file": SimpleUploadedFile(name, body, content_type="text/plain")},
    )
    assert response.status_code == 302, response.content[:500]


def test_upload_in_a_lands_under_a_prefix_in_s3_and_b_cannot_reach_it(
    s3_storage: None, s3_client: Any, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    # given: a file uploaded by a member of A
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Files")
    member_a, member_b = signed_in(tenant_a), signed_in(tenant_b)
    upload(member_a, project, "plan.txt", b"alpha's plan")
    with tenant_context(tenant_a):
        attachment = Attachment.objects.get(project=project)

    # then: the object sits under A's prefix, under the relative name stored in A
    key = f"tenants/{tenant_a.id}/{attachment.file.name}"
    assert attachment.file.name.startswith(f"attachments/{project.pk}/")
    assert s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"alpha's plan"

    # and: A's member downloads it through a checked link that redirects to S3
    link = member_a.get(f"/projects/{project.pk}/attachments/{attachment.pk}/")
    assert link.status_code == 302
    served = member_a.get(link["Location"])
    assert served.status_code == 302
    with urllib.request.urlopen(served["Location"]) as s3_answer:
        assert s3_answer.read() == b"alpha's plan"

    # but: B reaches nothing, neither by ids, nor by A's link, nor by A's key
    path = f"/projects/{project.pk}/attachments/{attachment.pk}/"
    assert member_b.get(path).status_code == 404
    assert member_b.get(link["Location"]).status_code == 404
    with tenant_context(tenant_b):
        assert not default_storage.exists(attachment.file.name)
        assert not default_storage.exists(key)


def test_file_link_stops_working_after_it_expires(
    s3_storage: None, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Expiring")
    member_a = signed_in(tenant_a)
    upload(member_a, project, "short.txt", b"soon gone")
    with tenant_context(tenant_a):
        name = Attachment.objects.get(project=project).file.name
        link = tenant_file_url(name, expires_in=1)
    assert member_a.get(link).status_code == 302
    later = time.time() + 2
    monkeypatch.setattr(time, "time", lambda: later)
    assert member_a.get(link).status_code == 404


def test_local_storage_keeps_the_same_per_tenant_layout(
    settings: Any, tmp_path: Path, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tenancy.storage.TenantFileSystemStorage"},
    }
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Local")
    member_a, member_b = signed_in(tenant_a), signed_in(tenant_b)
    upload(member_a, project, "notes.txt", b"local alpha")
    with tenant_context(tenant_a):
        attachment = Attachment.objects.get(project=project)
    on_disk = tmp_path / "tenants" / str(tenant_a.id) / attachment.file.name
    assert on_disk.read_bytes() == b"local alpha"

    link = member_a.get(f"/projects/{project.pk}/attachments/{attachment.pk}/")["Location"]
    served = member_a.get(link)
    assert served.status_code == 200
    assert served.getvalue() == b"local alpha"
    assert member_b.get(link).status_code == 404


def test_storage_refuses_to_work_without_a_tenant(s3_storage: None, db: None) -> None:
    with pytest.raises(NoActiveTenantError):
        default_storage.exists("attachments/1/x.txt")
