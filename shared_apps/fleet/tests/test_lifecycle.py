"""Archive, restore, delete, export and run: one tenant at a time, audited, isolated.

pg_dump reads only committed rows, so these tests commit a tenant of their own
(`lifecycle_tenant`) and remove it afterwards. Files go to moto's S3 server.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import override_settings

from shared_apps.audit.models import AuditRecord
from shared_apps.fleet.archive import tenant_archive
from shared_apps.fleet.provisioning import TEMPLATE
from shared_apps.fleet.restore import tenant_restore
from shared_apps.fleet.tests.conftest import SUBDOMAIN
from shared_apps.tenants.models import Domain, Tenant, TenantArchive, TenantMigration
from shared_apps.tenants.services import tenant_suspend
from tenancy import public_context, tenant_context
from tenancy.schemas import schema_exists
from tenant_apps.projects.models import Project
from tests.factories import ProjectFactory
from tests.fixtures import CliResult, table_columns
from tests.infra import BUCKET


def _stdout_json(result: CliResult) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _last_error_line(result: CliResult) -> str:
    return result.stderr.strip().splitlines()[-1]


def _snapshot(tenant: Tenant) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the tenant's schema, in a stable order."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name",
            [tenant.schema_name],
        )
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            cursor.execute(f'SELECT * FROM "{tenant.schema_name}"."{table}" ORDER BY 1')
            rows[table] = cursor.fetchall()
    return rows


def _files(tenant: Tenant) -> dict[str, bytes]:
    from tenancy.storage import tenant_media_names

    with tenant_context(tenant):
        found = {}
        for name in tenant_media_names():
            if not name.startswith("_platform/"):
                with default_storage.open(name, "rb") as handle:
                    found[name] = handle.read()
        return found


@pytest.fixture
def cli(
    manage_cli: Callable[..., CliResult], s3_server: dict[str, str]
) -> Callable[..., CliResult]:
    """`manage.py` in a child process, with its files on the same S3 server as this process."""

    def run(*args: str) -> CliResult:
        return manage_cli(*args, env=s3_server)

    return run


def test_archive_then_restore_gives_back_identical_rows_and_files(
    lifecycle_tenant: Tenant, s3_client: Any
) -> None:
    tenant = lifecycle_tenant
    rows_before, files_before = _snapshot(tenant), _files(tenant)
    assert files_before  # the attachment is there

    archived = tenant_archive(tenant=tenant, actor="test")
    assert not schema_exists(tenant.schema_name)
    key = f"tenants/{tenant.id}/{archived.archive.storage_name}"
    assert s3_client.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == (
        archived.archive.size_bytes
    )
    assert archived.archive.storage_name.startswith("_platform/archives/")
    with public_context():
        assert Tenant.objects.get(pk=tenant.pk).status == "archived"
    assert Client(HTTP_HOST=f"{SUBDOMAIN}.localhost").get("/").status_code == 404
    assert _files(tenant) == files_before  # archiving keeps the files

    restored = tenant_restore(tenant=tenant, actor="test")
    assert restored.migrations == []  # archived at the current migrations
    with public_context():
        assert Tenant.objects.get(pk=tenant.pk).status == "active"
        record = TenantMigration.objects.get(tenant=tenant)
        assert (record.state, record.migration_state) == ("succeeded", TEMPLATE.expected_state())
        actions = list(
            AuditRecord.objects.filter(tenant_id=tenant.id)
            .order_by("id")
            .values_list("action", "outcome")
        )
    assert actions[-2:] == [("tenant.archive", "succeeded"), ("tenant.restore", "succeeded")]
    assert _snapshot(tenant) == rows_before
    assert _files(tenant) == files_before
    with tenant_context(tenant):
        assert Project.objects.get().name == "Lifecycle launch"


def test_lifecycle_verbs_refuse_bad_input_with_one_line(
    lifecycle_tenant: Tenant, cli: Callable[..., CliResult]
) -> None:
    unknown = cli("tenants", "archive", "no-such-tenant")
    assert unknown.returncode == 1
    assert _last_error_line(unknown) == "CommandError: no tenant with subdomain 'no-such-tenant'"

    restore = cli("tenants", "restore", SUBDOMAIN)
    assert restore.returncode == 1
    assert _last_error_line(restore) == (
        "CommandError: 'lifecycle' is active; only archived tenants can be restored."
    )
    unconfirmed = cli("tenants", "delete", SUBDOMAIN)
    assert _last_error_line(unconfirmed) == (
        "CommandError: deleting 'lifecycle' cannot be undone; add --yes to confirm"
    )
    active = cli("tenants", "delete", SUBDOMAIN, "--yes")
    assert _last_error_line(active) == (
        "CommandError: 'lifecycle' is active; only archived tenants can be deleted (archive "
        "it first, or add --force)."
    )
    run = cli("tenants", "run", SUBDOMAIN, "--", "no_such_command")
    assert _last_error_line(run) == "CommandError: unknown command 'no_such_command'"
    both = cli("tenants", "run", SUBDOMAIN, "--all", "--", "check")
    assert _last_error_line(both) == "CommandError: name one tenant or give --all (not both)"
    assert schema_exists(lifecycle_tenant.schema_name)  # nothing happened
    with public_context():
        failed = AuditRecord.objects.filter(
            subdomain__in=["no-such-tenant", SUBDOMAIN], outcome="failed"
        )
        failures = set(failed.values_list("action", flat=True))
    assert {"tenant.archive", "tenant.restore", "tenant.delete"} <= failures


def test_delete_purges_schema_files_cache_and_rows_and_nothing_of_another_tenant(
    lifecycle_tenant: Tenant,
    beta: Tenant,
    cli: Callable[..., CliResult],
    s3_client: Any,
) -> None:
    tenant = lifecycle_tenant
    with tenant_context(beta):
        default_storage.save("keep/me.txt", ContentFile(b"beta's file"))
        cache.set("dashboard", "beta numbers")
    archived = _stdout_json(cli("tenants", "archive", SUBDOMAIN, "--json"))
    assert archived["status"] == "archived"

    deleted = _stdout_json(cli("tenants", "delete", SUBDOMAIN, "--yes", "--json"))
    assert deleted["deleted"] is True
    assert deleted["files_deleted"] == 2  # the attachment and the archive
    assert deleted["cache_keys_deleted"] >= 1
    assert not schema_exists(tenant.schema_name)
    assert s3_client.list_objects_v2(Bucket=BUCKET, Prefix=f"tenants/{tenant.id}/")["KeyCount"] == 0
    with public_context():
        assert not Tenant.objects.filter(pk=tenant.pk).exists()
        assert not Domain.objects.filter(tenant_id=tenant.pk).exists()
        assert not TenantArchive.objects.filter(tenant_id=tenant.pk).exists()
        assert AuditRecord.objects.filter(tenant_id=tenant.id, action="tenant.delete").exists()
    from django_redis import get_redis_connection  # type: ignore[import-untyped]

    assert not list(get_redis_connection("default").scan_iter(match=f"*{tenant.schema_name}*"))
    with tenant_context(beta):
        assert default_storage.open("keep/me.txt").read() == b"beta's file"
        assert cache.get("dashboard") == "beta numbers"
        default_storage.delete("keep/me.txt")


def test_delete_with_local_files_removes_the_tenant_folder_only(
    lifecycle_tenant: Tenant, beta: Tenant, tmp_path: Path
) -> None:
    from shared_apps.fleet.delete import tenant_delete

    local = {"default": {"BACKEND": "tenancy.storage.TenantFileSystemStorage"}}
    with override_settings(
        MEDIA_ROOT=str(tmp_path),
        STORAGES={
            **local,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    ):
        for owner in (lifecycle_tenant, beta):
            with tenant_context(owner):
                default_storage.save("notes/a.txt", ContentFile(owner.subdomain.encode()))
        result = tenant_delete(tenant=lifecycle_tenant, actor="test", force=True)
        assert result.files_deleted == 1
        assert not (tmp_path / "tenants" / str(lifecycle_tenant.id)).exists()
        assert (tmp_path / "tenants" / str(beta.id) / "notes" / "a.txt").read_bytes() == (b"beta")


def test_export_holds_this_tenants_rows_and_files_and_no_secrets(
    lifecycle_tenant: Tenant,
    beta: Tenant,
    cli: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    with tenant_context(beta):
        ProjectFactory.create(name="Beta secret project")
    target = tmp_path / "export.zip"
    result = _stdout_json(cli("tenants", "export", SUBDOMAIN, "--output", str(target), "--json"))
    assert result["models"]["projects.project"] == 1
    assert result["files"] == 1
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        projects = json.loads(archive.read("data/projects.project.json"))
        users = json.loads(archive.read("data/accounts.user.json"))
        everything = b"".join(archive.read(name) for name in names)
        file_names = [name for name in names if name.startswith("files/")]
        assert archive.read(file_names[0]) == b"the plan\x00\xff"
    assert manifest["subdomain"] == SUBDOMAIN
    assert [project["fields"]["name"] for project in projects] == ["Lifecycle launch"]
    assert users[0]["fields"]["email"] == "owner@lifecycle.test"
    assert "password" not in users[0]["fields"]
    assert b"Beta secret project" not in everything
    assert not any(name.startswith("data/otp_") or "_platform" in name for name in names)

    again = cli("tenants", "export", SUBDOMAIN, "--output", str(target))
    assert again.returncode == 1
    assert _last_error_line(again) == f"CommandError: {target} exists; choose another --output"


def test_run_executes_a_command_inside_each_tenant_only(
    lifecycle_tenant: Tenant, beta: Tenant, cli: Callable[..., CliResult]
) -> None:
    with tenant_context(beta):
        ProjectFactory.create(name="Beta secret project")
    one = cli("tenants", "run", SUBDOMAIN, "--", "dumpdata", "projects.project")
    assert one.returncode == 0, one.stderr
    assert "Lifecycle launch" in one.stdout
    assert "Beta secret project" not in one.stdout

    every = cli("tenants", "run", "--all", "--json", "--", "dumpdata", "projects.project")
    assert every.returncode == 0, every.stderr
    lines = [json.loads(line) for line in every.stdout.splitlines()]
    outputs = {line["subdomain"]: line["output"] for line in lines if line["event"] == "tenant"}
    assert "Lifecycle launch" in outputs[SUBDOMAIN]
    assert "Beta secret project" in outputs[beta.subdomain]
    assert "Beta secret project" not in outputs[SUBDOMAIN]
    assert lines[-1] == {"event": "summary", "tenants": len(outputs), "failed": []}


def test_a_suspended_tenants_api_answers_problem_json_and_its_site_a_page(
    tenant_a: Tenant, client_a: Client
) -> None:
    tenant_suspend(tenant=tenant_a, reason="unpaid", actor="test")
    api = client_a.get("/api/v1/projects")
    assert api.status_code == 403
    assert api["Content-Type"] == "application/problem+json"
    assert api.json()["code"] == "tenant_suspended"
    page = client_a.get("/")
    assert page.status_code == 403
    assert b"suspended" in page.content.lower()


def test_archive_interrupted_after_the_upload_changes_nothing(
    lifecycle_tenant: Tenant, monkeypatch: pytest.MonkeyPatch, s3_client: Any
) -> None:
    from shared_apps.fleet import archive
    from shared_apps.fleet.errors import OperationFailedError

    def broken(schema_name: str) -> None:
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr(archive.schemas, "schema_drop", broken)  # the very last step
        with pytest.raises(OperationFailedError):
            tenant_archive(tenant=lifecycle_tenant, actor="test")
    assert schema_exists(lifecycle_tenant.schema_name)
    with public_context():
        assert Tenant.objects.get(pk=lifecycle_tenant.pk).status == "active"
        assert not TenantArchive.objects.filter(tenant=lifecycle_tenant).exists()
        audit = AuditRecord.objects.filter(action="tenant.archive").latest("id")
    assert (audit.outcome, audit.detail["error"]) == ("failed", "operation_failed")
    prefix = f"tenants/{lifecycle_tenant.id}/_platform/"
    assert s3_client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["KeyCount"] == 0


def test_a_write_in_flight_when_archiving_starts_is_in_the_archive(
    lifecycle_tenant: Tenant,
) -> None:
    import threading

    from django.db import connections, transaction

    inserted, release = threading.Event(), threading.Event()

    def late_writer() -> None:
        try:
            with tenant_context(lifecycle_tenant), transaction.atomic():
                ProjectFactory.create(name="Written while archiving began")
                inserted.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=late_writer)
    writer.start()
    assert inserted.wait(10)
    # The archive waits for the writer's lock; let the writer commit a moment later.
    threading.Timer(0.5, release.set).start()
    tenant_archive(tenant=lifecycle_tenant, actor="test")
    writer.join(10)

    tenant_restore(tenant=lifecycle_tenant, actor="test")
    with tenant_context(lifecycle_tenant):
        assert set(Project.objects.values_list("name", flat=True)) == {
            "Lifecycle launch",
            "Written while archiving began",
        }


def test_restore_puts_back_a_suspended_status_and_continues_after_an_interruption(
    lifecycle_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared_apps.fleet import restore

    tenant_suspend(tenant=lifecycle_tenant, reason="unpaid", actor="test")
    tenant_archive(tenant=lifecycle_tenant, actor="test")

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # the operator pressed Ctrl-C after the schema came back

    with monkeypatch.context() as patched:
        patched.setattr(restore, "_migrated", interrupted)
        with pytest.raises(KeyboardInterrupt):
            tenant_restore(tenant=lifecycle_tenant, actor="test")
    assert schema_exists(lifecycle_tenant.schema_name)

    restored = tenant_restore(tenant=lifecycle_tenant, actor="test")
    assert restored.tenant.status == "suspended"
    with public_context():
        assert Tenant.objects.get(pk=lifecycle_tenant.pk).status == "suspended"
    with tenant_context(lifecycle_tenant):
        assert Project.objects.get().name == "Lifecycle launch"


def test_restore_refuses_an_archive_that_does_not_match_its_checksum(
    lifecycle_tenant: Tenant,
) -> None:
    from shared_apps.fleet.errors import ArchiveCorruptError

    archived = tenant_archive(tenant=lifecycle_tenant, actor="test")
    with tenant_context(lifecycle_tenant):
        default_storage.delete(archived.archive.storage_name)
        default_storage.save(archived.archive.storage_name, ContentFile(b"not a dump"))
    with pytest.raises(ArchiveCorruptError):
        tenant_restore(tenant=lifecycle_tenant, actor="test")
    assert not schema_exists(lifecycle_tenant.schema_name)
    with public_context():
        assert Tenant.objects.get(pk=lifecycle_tenant.pk).status == "archived"


def test_call_command_reports_archive_as_json(lifecycle_tenant: Tenant) -> None:
    import io

    out = io.StringIO()
    call_command("tenants", "archive", SUBDOMAIN, "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["status"] == "archived"
    assert len(result["sha256"]) == 64
    assert (result["format"], result["pg_dump_reason"]) == ("template_copy", "")


def test_a_tenant_archived_before_a_release_is_migrated_when_restored(
    lifecycle_tenant: Tenant,
) -> None:
    tenant_archive(tenant=lifecycle_tenant, actor="test")
    release = {"fleet_probe": "tests.fleet_app.migrations_next"}  # one migration later
    TEMPLATE.forget()
    try:
        with override_settings(MIGRATION_MODULES=release):
            restored = tenant_restore(tenant=lifecycle_tenant, actor="test")
            with public_context():
                record = TenantMigration.objects.get(tenant=lifecycle_tenant)
            assert record.migration_state == TEMPLATE.expected_state()
    finally:
        TEMPLATE.forget()
    assert restored.migrations == ["fleet_probe.0002_probe_weight"]
    assert record.state == "succeeded"
    assert "weight" in table_columns(lifecycle_tenant.schema_name, "fleet_probe_probe")
