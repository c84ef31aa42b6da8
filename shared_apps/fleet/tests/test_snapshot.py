"""Fast archives: a schema that matches its template is archived as the template's DDL plus
each table's COPY data, and restored exactly; a drifted one falls back to pg_dump, also
exactly. "Exactly" is checked on the catalog (tables, columns, defaults, constraints,
indexes, sequences and their positions, comments) and on every row of every table.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from shared_apps.fleet.archive import file_sha256, tenant_archive
from shared_apps.fleet.errors import OperationFailedError
from shared_apps.fleet.restore import tenant_restore
from shared_apps.tenants.models import Tenant, TenantArchive
from tenancy import public_context, tenant_context
from tenancy.schemas import schema_exists
from tenant_apps.projects.models import Project
from tests.factories import ProjectFactory

Catalog = dict[str, list[tuple[Any, ...]]]


def _catalog(schema: str) -> Catalog:
    """The schema as pg_dump would see it, with PostgreSQL's own deparsing (slow per
    object, fine for one schema)."""
    queries = {
        "tables": """
            SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text
            FROM pg_class c WHERE c.relnamespace = %(nsp)s::regnamespace
              AND c.relkind NOT IN ('i', 'I') ORDER BY 1""",
        "columns": """
            SELECT c.relname, row_number() OVER (PARTITION BY c.relname ORDER BY a.attnum),
                   a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid)
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
             AND NOT a.attisdropped
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            WHERE c.relnamespace = %(nsp)s::regnamespace AND c.relkind = 'r' ORDER BY 1, 2""",
        "constraints": """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
            FROM pg_constraint WHERE connamespace = %(nsp)s::regnamespace ORDER BY 1, 2""",
        "indexes": """
            SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %(nsp)s ORDER BY 1""",
        "sequences": """
            SELECT sequencename, data_type::text, start_value, increment_by, max_value,
                   last_value
            FROM pg_sequences WHERE schemaname = %(nsp)s ORDER BY 1""",
        "comments": """
            SELECT c.relname, d.objsubid, d.description
            FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
            WHERE c.relnamespace = %(nsp)s::regnamespace ORDER BY 1, 2""",
    }
    found: Catalog = {}
    with connection.cursor() as cursor:
        for name, sql in queries.items():
            cursor.execute(sql, {"nsp": schema})
            found[name] = cursor.fetchall()
    return found


def _rows(schema: str) -> dict[str, list[tuple[Any, ...]]]:
    rows = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [schema])
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY 1')
            rows[table] = cursor.fetchall()
    return rows


def _archive_file(tenant: Tenant, archive: TenantArchive) -> bytes:
    with tenant_context(tenant), default_storage.open(archive.storage_name, "rb") as handle:
        return bytes(handle.read())


def test_a_schema_that_matches_its_template_round_trips_exactly_from_its_copy_archive(
    lifecycle_tenant: Tenant, beta: Tenant
) -> None:
    tenant, schema = lifecycle_tenant, lifecycle_tenant.schema_name
    with tenant_context(beta):
        ProjectFactory.create(name="Beta secret project")
    with connection.cursor() as cursor:  # a sequence ahead of its rows must stay ahead
        cursor.execute(f"SELECT setval('\"{schema}\".projects_project_id_seq', 500)")
    catalog_before, rows_before = _catalog(schema), _rows(schema)

    archived = tenant_archive(tenant=tenant, actor="test")

    assert archived.archive.format == TenantArchive.Format.TEMPLATE_COPY
    assert archived.pg_dump_reason == ""
    assert archived.archive.storage_name.endswith(".tar.gz")
    assert not schema_exists(schema)
    unpacked = _unpacked(_archive_file(tenant, archived.archive))
    assert b"Lifecycle launch" in unpacked
    assert b"Beta secret project" not in unpacked  # one tenant's rows only

    restored = tenant_restore(tenant=tenant, actor="test")

    assert restored.migrations == []
    assert _catalog(schema) == catalog_before
    assert _rows(schema) == rows_before
    with tenant_context(tenant):
        assert ProjectFactory.create().pk == 501  # the sequence went on
    with tenant_context(beta):
        assert Project.objects.filter(name="Beta secret project").count() == 1


def _unpacked(content: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        return b"".join(
            archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
        )


def test_the_archive_holds_a_versioned_manifest_the_templates_sql_and_a_copy_per_table(
    lifecycle_tenant: Tenant,
) -> None:
    archived = tenant_archive(tenant=lifecycle_tenant, actor="test")
    content = _archive_file(lifecycle_tenant, archived.archive)
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        names = archive.getnames()
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
        sql = archive.extractfile("schema.sql").read().decode()  # type: ignore[union-attr]
        projects = archive.extractfile("data/projects_project.copy").read()  # type: ignore[union-attr]
    assert names[0] == "schema.sql"
    assert names[-1] == "manifest.json"
    assert (manifest["format"], manifest["version"]) == ("tenant-archive", 1)
    assert manifest["schema_name"] == lifecycle_tenant.schema_name
    assert manifest["migration_state"] == archived.archive.migration_state
    assert "__tenant_schema__.projects_project" in sql  # the schema's name is a placeholder
    assert lifecycle_tenant.schema_name not in sql
    tables = [table["name"] for table in manifest["tables"]]
    assert sorted(f"data/{name}.copy" for name in tables) == sorted(
        name for name in names if name.startswith("data/")
    )
    # parents before the tables whose foreign keys point at them
    assert tables.index("accounts_user") < tables.index("projects_project")
    assert tables.index("projects_project") < tables.index("projects_task")
    (entry,) = [table for table in manifest["tables"] if table["name"] == "projects_project"]
    assert (entry["rows"], entry["columns"][0]) == (1, "id")
    assert "Lifecycle launch" in projects.decode()
    sequences = {sequence["name"]: sequence for sequence in manifest["sequences"]}
    assert sequences["projects_project_id_seq"]["is_called"] is True


def test_a_drifted_schema_is_archived_with_pg_dump_and_round_trips_exactly(
    lifecycle_tenant: Tenant,
) -> None:
    schema = lifecycle_tenant.schema_name
    with connection.cursor() as cursor:  # changed by hand: the template no longer says it all
        cursor.execute(f"COMMENT ON TABLE \"{schema}\".projects_project IS 'kept by hand'")
        cursor.execute(f'CREATE INDEX by_hand ON "{schema}".projects_task (title)')
        cursor.execute(
            f"ALTER TABLE \"{schema}\".projects_project ALTER description SET DEFAULT '-'"
        )
    catalog_before, rows_before = _catalog(schema), _rows(schema)
    assert catalog_before["comments"] == [("projects_project", 0, "kept by hand")]

    archived = tenant_archive(tenant=lifecycle_tenant, actor="test")

    assert archived.archive.format == TenantArchive.Format.PG_DUMP
    assert archived.pg_dump_reason.startswith("its schema drifted from the template: ")
    assert "extra index: projects_task.by_hand" in archived.pg_dump_reason
    tenant_restore(tenant=lifecycle_tenant, actor="test")
    assert _catalog(schema) == catalog_before
    assert _rows(schema) == rows_before


def test_pg_dump_can_be_asked_for_and_round_trips_too(lifecycle_tenant: Tenant) -> None:
    schema = lifecycle_tenant.schema_name
    catalog_before, rows_before = _catalog(schema), _rows(schema)
    archived = tenant_archive(tenant=lifecycle_tenant, actor="test", pg_dump=True)
    assert (archived.archive.format, archived.pg_dump_reason) == ("pg_dump", "asked for pg_dump")
    tenant_restore(tenant=lifecycle_tenant, actor="test")
    assert _catalog(schema) == catalog_before
    assert _rows(schema) == rows_before


def test_an_archive_whose_rows_do_not_match_its_manifest_restores_nothing(
    lifecycle_tenant: Tenant,
) -> None:
    archived = tenant_archive(tenant=lifecycle_tenant, actor="test")
    content = _archive_file(lifecycle_tenant, archived.archive)
    # given: one row removed from a table's data, the archive's checksum made to agree
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as source,
        tarfile.open(fileobj=out, mode="w:gz") as target,
    ):
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "data/projects_task.copy":
                data = b""
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    with tenant_context(lifecycle_tenant):
        default_storage.delete(archived.archive.storage_name)
        default_storage.save(archived.archive.storage_name, ContentFile(out.getvalue()))
    with public_context():
        TenantArchive.objects.filter(pk=archived.archive.pk).update(sha256=_sha256(out.getvalue()))

    with pytest.raises(OperationFailedError) as refused:
        tenant_restore(tenant=lifecycle_tenant, actor="test")

    assert "projects_task do not match its manifest" in refused.value.detail
    assert not schema_exists(lifecycle_tenant.schema_name)  # rolled back, all of it
    with public_context():
        assert Tenant.objects.get(pk=lifecycle_tenant.pk).status == "archived"


def test_an_archive_of_another_tenant_is_never_restored_into_this_one(
    lifecycle_tenant: Tenant, tmp_path: Any
) -> None:
    from django.db import transaction

    from shared_apps.fleet.snapshot import snapshot_restore

    archived = tenant_archive(tenant=lifecycle_tenant, actor="test")
    copy = tmp_path / "lifecycle.tar.gz"
    copy.write_bytes(_archive_file(lifecycle_tenant, archived.archive))
    stranger = Tenant(id=uuid.uuid4(), subdomain="stranger", name="Stranger")
    stranger.schema_name = f"t_{stranger.id.hex}"
    with pytest.raises(RuntimeError, match="belongs to another tenant"), transaction.atomic():
        snapshot_restore(stranger, copy)
    assert not schema_exists(stranger.schema_name)
    tenant_restore(tenant=lifecycle_tenant, actor="test")  # its own tenant takes it back


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_file_sha256_reads_in_blocks(tmp_path: Any) -> None:
    target = tmp_path / "blob"
    target.write_bytes(b"x" * (3 << 20))
    assert file_sha256(target) == (_sha256(b"x" * (3 << 20)), 3 << 20)
