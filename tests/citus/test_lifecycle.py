"""Archive, restore and export of a distributed tenant: it comes back distributed, with
the same rows, in both archive formats."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from shared_apps.accounts.models import User
from shared_apps.fleet.archive import tenant_archive
from shared_apps.fleet.export import tenant_export
from shared_apps.fleet.restore import tenant_restore
from shared_apps.tenants.models import Tenant, TenantArchive
from tenancy import public_context, tenant_context
from tenancy.schemas import schema_exists
from tenant_apps.projects.models import Project
from tenant_apps.projects.services import attachment_upload, project_create, task_create
from tests.citus.conftest import (
    ClusterTenant,
    committed_tenant,
    run_subdomain,
    schema_node,
    tenants_purge,
    worker_nodes,
)
from tests.factories import TEST_PASSWORD
from tests.fixtures import sign_in

pytestmark = pytest.mark.citus


def _rows(tenant: Tenant) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the tenant's schema, in a stable order."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace "
            "AND relkind = 'r' ORDER BY relname",
            [tenant.schema_name],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT * FROM "{tenant.schema_name}"."{table}" ORDER BY 1')
            rows[table] = cursor.fetchall()
    return rows


@pytest.fixture
def working(django_db_blocker: Any, settings: Any, tmp_path: Path) -> Iterator[ClusterTenant]:
    """A committed, distributed tenant with a project, a task and a file (files under the
    test's own folder); removed afterwards. No test transaction: pg_dump reads only what is
    committed."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.TENANT_ROUTE_RECHECK_SECONDS = 0  # no process but this one serves it
    with django_db_blocker.unblock():
        tenant = committed_tenant("life")
        owner_email = f"owner@{tenant.subdomain}.test"
        with tenant_context(tenant):
            owner = User.objects.get(email=owner_email)
            project = project_create(actor=owner, name="Cluster launch", description="Ü ✓")
            task_create(
                actor=owner, project=project, title="Ship", assignee_id=owner.pk, due_date=None
            )
            upload = SimpleUploadedFile("plan.txt", b"the plan\x00\xff", content_type="text/plain")
            attachment_upload(actor=owner, project=project, upload=upload)
        node = schema_node(tenant.schema_name)
        assert node in worker_nodes()
        yield ClusterTenant(tenant, owner_email, node)
        tenants_purge(run_subdomain("life"))


@pytest.mark.parametrize(
    ("pg_dump", "archive_format"),
    [(False, TenantArchive.Format.TEMPLATE_COPY), (True, TenantArchive.Format.PG_DUMP)],
)
def test_archive_and_restore_bring_a_distributed_tenant_back_distributed(
    working: ClusterTenant, pg_dump: bool, archive_format: str
) -> None:
    tenant = working.tenant
    rows_before = _rows(tenant)

    archived = tenant_archive(tenant=tenant, actor="test", pg_dump=pg_dump)
    assert archived.archive.format == archive_format
    assert not schema_exists(tenant.schema_name)
    assert schema_node(tenant.schema_name) is None

    restored = tenant_restore(tenant=tenant, actor="test")
    assert restored.migrations == []
    with public_context():
        assert Tenant.objects.get(pk=tenant.pk).status == "active"
    assert schema_node(tenant.schema_name) in worker_nodes()
    assert _rows(tenant) == rows_before
    with connection.cursor() as cursor:  # no copy of the rows left on the coordinator
        cursor.execute(
            "SELECT coalesce(sum(pg_relation_size(oid)), 0) FROM pg_class "
            "WHERE relnamespace = %s::regnamespace AND relkind = 'r'",
            [tenant.schema_name],
        )
        assert cursor.fetchone() == (0,)

    # the workspace serves its pages again, and its ids go on from where they were
    owner = working.client()
    assert sign_in(owner, working.owner_email, TEST_PASSWORD).status_code == 302
    assert b"Cluster launch" in owner.get("/projects/").content
    assert (
        owner.post("/projects/new/", {"name": "After restore", "description": ""}).status_code
        == 302
    )
    with tenant_context(tenant):
        first, second = Project.objects.order_by("pk")
        assert (first.name, second.name) == ("Cluster launch", "After restore")
        assert second.pk == first.pk + 1


def test_export_of_a_distributed_tenant_holds_its_rows_and_files(
    working: ClusterTenant, tmp_path: Path
) -> None:
    target = tmp_path / "export.zip"
    result = tenant_export(tenant=working.tenant, actor="test", output=target)
    assert result.files == 1
    with zipfile.ZipFile(target) as archive:
        projects = json.loads(archive.read("data/projects.project.json"))
        users = json.loads(archive.read("data/accounts.user.json"))
        (file_name,) = [name for name in archive.namelist() if name.startswith("files/")]
        assert archive.read(file_name) == b"the plan\x00\xff"
    assert [project["fields"]["name"] for project in projects] == ["Cluster launch"]
    assert [user["fields"]["email"] for user in users] == [working.owner_email]
