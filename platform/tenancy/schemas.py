"""Schema names and DDL. Names come only from `schema_name_for`; identifiers are quoted."""

from __future__ import annotations

from uuid import UUID

from django.db import connection

from tenancy.context import PUBLIC_SCHEMA, TENANT_SCHEMA_PATTERN


def schema_name_for(tenant_id: UUID) -> str:
    """Derive the schema name of a tenant from its id: `t_` and 32 hex digits, 34 bytes."""
    return f"t_{tenant_id.hex}"


def quote(schema_name: str) -> str:
    """Quote a platform schema name for SQL, refusing anything outside the strict pattern."""
    if schema_name != PUBLIC_SCHEMA and not TENANT_SCHEMA_PATTERN.match(schema_name):
        raise ValueError(f"refusing unexpected schema name {schema_name!r}")
    return '"' + schema_name.replace('"', '""') + '"'


def schema_exists(schema_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", [schema_name])
        return cursor.fetchone() is not None


def schema_create(schema_name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {quote(schema_name)}")


def schema_drop(schema_name: str) -> None:
    if schema_name == PUBLIC_SCHEMA:
        raise ValueError("refusing to drop the public schema")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {quote(schema_name)} CASCADE")
