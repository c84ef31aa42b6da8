"""The join guard (tests/join_guard.py): inside a tenant, one statement must not read a
public table and a tenant table together."""

from __future__ import annotations

import pytest
from django.db import connection

from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tests.join_guard import CrossSchemaJoinError, JoinGuard, statement_mixes_schemas

JOIN = (
    'SELECT "projects_project"."id" FROM "projects_project" '
    'INNER JOIN "tenants_tenant" ON ("tenants_tenant"."name" = "projects_project"."name")'
)


def test_a_join_of_public_and_tenant_tables_inside_a_tenant_fails(
    tenant_a: Tenant, join_guard: JoinGuard
) -> None:
    with (
        tenant_context(tenant_a),
        connection.cursor() as cursor,
        pytest.raises(CrossSchemaJoinError) as raised,
    ):
        cursor.execute(JOIN)
    assert str(raised.value).startswith(
        "inside tenant 'alpha', one statement reads public ['tenants_tenant'] and tenant "
        "['projects_project']: SELECT"
    )
    assert len(join_guard.violations) == 1
    join_guard.violations.clear()  # seen: this test is about the guard itself


def test_a_subquery_on_a_public_table_counts_as_reading_it() -> None:
    sql = (
        'UPDATE "projects_task" SET "title" = %s WHERE "projects_task"."id" IN '
        '(SELECT U0."id" FROM "billing_billingaccount" U0)'
    )
    assert statement_mixes_schemas(sql) == ({"billing_billingaccount"}, {"projects_task"})


def test_tables_of_both_lists_are_the_tenants_own_inside_a_tenant() -> None:
    # accounts_user exists in public and in every tenant: inside a tenant it is the tenant's
    sql = 'SELECT 1 FROM "accounts_user" INNER JOIN "projects_project" ON (1 = 1)'
    assert statement_mixes_schemas(sql) == (set(), set())


def test_statements_of_one_side_pass_inside_a_tenant_and_joins_pass_on_public(
    tenant_a: Tenant, join_guard: JoinGuard
) -> None:
    with tenant_context(tenant_a), connection.cursor() as cursor:
        cursor.execute('SELECT count(*) FROM "projects_project"')
        cursor.execute('SELECT count(*) FROM "tenants_tenant"')
    with public_context(), connection.cursor() as cursor:
        cursor.execute(
            'SELECT count(*) FROM "tenants_tenant" INNER JOIN "tenants_domain" '
            'ON ("tenants_domain"."tenant_id" = "tenants_tenant"."id")'
        )
    assert join_guard.violations == []
