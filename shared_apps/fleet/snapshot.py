"""Fast archives: a tenant schema as its template's DDL plus each table's COPY data.

`pg_dump` reads the whole catalog of the database before it dumps one schema, which takes
seconds once thousands of tenants share it. A tenant whose schema is exactly what its
provisioning template makes (`tenants verify` would find no drift) needs none of that: its
DDL is the template's SQL, and what remains are its rows and its sequences' positions.

The archive is a gzip'd tar (format `tenant-archive`, version 1):

    manifest.json        what follows, and how to load it (below)
    schema.sql           the template's SQL, the schema's name as a placeholder
    data/<table>.copy    each table's rows, PostgreSQL's COPY text format

The manifest names the tenant, its schema, the migration state of the template, and lists
the tables in load order (a table after those its foreign keys point at), each with its
columns, its file, its number of rows and the file's SHA-256, and the sequences with their
`last_value` and `is_called`.

Restoring replays schema.sql into the new schema, empties the tables (the template seeds
migration records, content types and permissions; the archive has the tenant's own),
COPYs each table back in the manifest's order with its foreign keys deferred, checks each
table's number of rows and sets each sequence: one transaction, all or nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.db import connection
from django.utils import timezone
from psycopg import sql as pgsql

from shared_apps.fleet.catalog import SchemaCatalog, catalog_diff, schema_catalog_read
from shared_apps.fleet.provisioning import TEMPLATE_NAME
from shared_apps.tenants.models import SchemaTemplate, Tenant, TenantMigration
from tenancy import schemas

FORMAT = "tenant-archive"
VERSION = 1
MANIFEST = "manifest.json"
SCHEMA_SQL = "schema.sql"
# A table's rows are kept in memory up to this size while it is copied out, then on disk.
SPOOL_BYTES = 8 << 20


@dataclass(frozen=True)
class SnapshotPlan:
    """What a fast archive of one schema needs: the template it matches."""

    migration_state: str
    template_sql: str
    catalog: SchemaCatalog


def snapshot_plan(tenant: Tenant) -> tuple[SnapshotPlan | None, str]:
    """Whether the tenant's schema can be archived from its template: the plan, or None and
    why not (the schema drifted, or is not at the template's migrations). Call after its
    tables are locked, so the answer holds until the archive is written."""
    template = SchemaTemplate.objects.filter(name=TEMPLATE_NAME).first()
    catalog = SchemaCatalog.from_json(template.catalog) if template is not None else None
    if template is None or catalog is None:
        return None, "no provisioning template with a catalog"
    recorded = (
        TenantMigration.objects.filter(tenant_id=tenant.pk)
        .values_list("migration_state", flat=True)
        .first()
    )
    if recorded != template.migration_state:
        return None, "its schema is not at the template's migrations"
    actual = schema_catalog_read(tenant.schema_name)
    if actual is None:
        return None, "its schema is missing"
    drift = catalog_diff(catalog, actual)
    if not drift.is_empty:
        return None, "its schema drifted from the template: " + "; ".join(drift.lines(limit=5))
    return SnapshotPlan(template.migration_state, template.sql, catalog), ""


def snapshot_write(tenant: Tenant, plan: SnapshotPlan, target: Path) -> None:
    """Write the archive of the tenant's schema to `target`, from this transaction's view."""
    schema = tenant.schema_name
    tables = _load_order(plan.catalog)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "tenant_id": str(tenant.pk),
        "subdomain": tenant.subdomain,
        "schema_name": schema,
        "migration_state": plan.migration_state,
        "created_at": timezone.now().isoformat(),
        "schema_sql": SCHEMA_SQL,
        "tables": [],
        "sequences": _sequence_positions(schema, plan.catalog.sequences()),
    }
    with connection.cursor() as wrapper, tarfile.open(target, "w:gz", compresslevel=6) as archive:
        raw = wrapper.cursor  # psycopg's own, for COPY
        _add(archive, SCHEMA_SQL, io.BytesIO(plan.template_sql.encode()))
        for table in tables:
            columns = plan.catalog.columns(table)
            statement = pgsql.SQL("COPY {}.{} ({}) TO STDOUT").format(
                pgsql.Identifier(schema),
                pgsql.Identifier(table),
                pgsql.SQL(", ").join(map(pgsql.Identifier, columns)),
            )
            with _spool() as data:
                digest = hashlib.sha256()
                with raw.copy(statement) as copy:
                    for chunk in copy:
                        data.write(chunk)
                        digest.update(chunk)
                rows = raw.rowcount
                data.seek(0)
                name = f"data/{table}.copy"
                _add(archive, name, data)
            manifest["tables"].append(
                {
                    "name": table,
                    "columns": columns,
                    "file": name,
                    "rows": rows,
                    "sha256": digest.hexdigest(),
                }
            )
        _add(archive, MANIFEST, io.BytesIO(json.dumps(manifest, indent=1).encode()))


def snapshot_restore(tenant: Tenant, source: Path) -> dict[str, Any]:
    """Recreate the tenant's schema from `snapshot_write`'s archive in the caller's
    transaction; return its manifest.

    Raises:
        RuntimeError: the archive is not one this code reads, is another tenant's, or its
            data does not match its manifest (nothing is left behind: the caller's
            transaction rolls back).
    """
    schema_name = tenant.schema_name
    target = schemas.quote(schema_name)
    with tarfile.open(source, "r:gz") as archive:
        manifest = json.loads(_member(archive, MANIFEST).read())
        if (manifest.get("format"), manifest.get("version")) != (FORMAT, VERSION):
            raise RuntimeError(f"not a {FORMAT} archive of version {VERSION}")
        if manifest.get("tenant_id") != str(tenant.pk):
            # Never another tenant's rows, whatever put the file under this one's prefix.
            raise RuntimeError("the archive belongs to another tenant; not restored")
        schemas.schema_create_from_dump(schema_name, _member(archive, SCHEMA_SQL).read().decode())
        tables = manifest["tables"]
        with connection.cursor() as cursor:
            # Foreign keys are checked at commit. The template seeded rows of its own: a
            # DELETE of a few rows in tables made a moment ago costs nothing, where
            # TRUNCATE would make new files for every table and index (a quarter second).
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            emptied = [
                f"DELETE FROM {target}.{pgsql.Identifier(table['name']).as_string(None)}"
                for table in reversed(tables)
            ]
            if emptied:
                cursor.execute(";\n".join(emptied))
        with connection.cursor() as wrapper:
            _tables_load(wrapper.cursor, schema_name, archive, tables)
        _sequences_set(schema_name, manifest["sequences"])
    return dict(manifest)


def _tables_load(
    raw: Any, schema_name: str, archive: tarfile.TarFile, tables: list[dict[str, Any]]
) -> None:
    """COPY each table's rows back, checking them against the manifest."""
    for table in tables:
        statement = pgsql.SQL("COPY {}.{} ({}) FROM STDIN").format(
            pgsql.Identifier(schema_name),
            pgsql.Identifier(table["name"]),
            pgsql.SQL(", ").join(map(pgsql.Identifier, table["columns"])),
        )
        data = _member(archive, table["file"])
        digest = hashlib.sha256()
        with raw.copy(statement) as copy:
            while chunk := data.read(1 << 16):
                digest.update(chunk)
                copy.write(chunk)
        if raw.rowcount != table["rows"] or digest.hexdigest() != table["sha256"]:
            raise RuntimeError(f"the archive's rows of {table['name']} do not match its manifest")


def _load_order(catalog: SchemaCatalog) -> list[str]:
    """The tables, each after the tables its foreign keys point at (cycles broken by name;
    foreign keys are deferred while loading anyway)."""
    tables = catalog.tables()
    parents = {table: catalog.references(table) & set(tables) for table in tables}
    ordered: list[str] = []
    placed: set[str] = set()

    def place(table: str, seen: frozenset[str]) -> None:
        if table in placed or table in seen:
            return
        for parent in sorted(parents[table]):
            place(parent, seen | {table})
        placed.add(table)
        ordered.append(table)

    for table in tables:
        place(table, frozenset())
    return ordered


def _sequence_positions(schema: str, sequences: list[str]) -> list[dict[str, Any]]:
    if not sequences:
        return []
    parts = [
        pgsql.SQL("SELECT {}, last_value, is_called FROM {}.{}").format(
            pgsql.Literal(name), pgsql.Identifier(schema), pgsql.Identifier(name)
        )
        for name in sequences
    ]
    with connection.cursor() as cursor:
        cursor.execute(pgsql.SQL(" UNION ALL ").join(parts).as_string(None))
        return [
            {"name": name, "last_value": int(last_value), "is_called": bool(is_called)}
            for name, last_value, is_called in cursor.fetchall()
        ]


def _sequences_set(schema_name: str, sequences: list[dict[str, Any]]) -> None:
    if not sequences:
        return
    calls = [
        pgsql.SQL("pg_catalog.setval({}, {}, {})").format(
            pgsql.Literal(
                f"{schemas.quote(schema_name)}.{pgsql.Identifier(s['name']).as_string(None)}"
            ),
            pgsql.Literal(int(s["last_value"])),
            pgsql.Literal(bool(s["is_called"])),
        )
        for s in sequences
    ]
    with connection.cursor() as cursor:
        cursor.execute(pgsql.SQL("SELECT {}").format(pgsql.SQL(", ").join(calls)).as_string(None))


def _spool() -> tempfile.SpooledTemporaryFile[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)


def _add(archive: tarfile.TarFile, name: str, data: IO[bytes]) -> None:
    data.seek(0, io.SEEK_END)
    info = tarfile.TarInfo(name)
    info.size = data.tell()
    info.mtime = int(timezone.now().timestamp())
    info.mode = 0o600
    data.seek(0)
    archive.addfile(info, data)


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        found = archive.extractfile(name)
    except KeyError:
        found = None
    if found is None:
        raise RuntimeError(f"the archive has no {name}")
    return found
