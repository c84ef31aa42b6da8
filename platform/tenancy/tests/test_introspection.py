"""Listing a schema's tables: the same answer as Django's, without a visibility test per row
of the whole catalog."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context

VISIBLE_TABLES_SQL = """
SELECT c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v') AND n.nspname NOT IN ('pg_catalog', 'pg_toast')
  AND pg_catalog.pg_table_is_visible(c.oid)
"""


def _listed_and_visible(schema: str) -> tuple[list[str], list[str]]:
    with CaptureQueriesContext(connection) as listing, connection.cursor() as cursor:
        listed = sorted(connection.introspection.table_names(cursor))
    assert not [q for q in listing if "pg_table_is_visible" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f'SET search_path = "{schema}"')  # what django-tenants narrows it to
        cursor.execute(VISIBLE_TABLES_SQL)
        visible = sorted(row[0] for row in cursor.fetchall())
    return listed, visible


def test_the_public_schema_lists_its_own_tables_only(tenant_a: Tenant) -> None:
    with public_context():
        listed, visible = _listed_and_visible("public")
    assert listed == visible
    assert "tenants_tenant" in listed
    assert "projects_project" not in listed  # a tenant table


def test_a_tenant_schema_lists_its_own_tables_only(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        listed, visible = _listed_and_visible(tenant_a.schema_name)
    assert listed == visible
    assert "projects_project" in listed
    assert "tenants_tenant" not in listed  # public's, not on the narrowed path
