"""`tenants migrate` on a Citus cluster: Django's SQL rewritten into forms Citus accepts,
for tenants on both workers, compiled once or run by Django's executor; what Citus cannot
run fails each tenant, untouched, naming the statement."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from shared_apps.fleet.provisioning import TEMPLATE
from shared_apps.tenants.models import SchemaTemplate, Tenant, TenantMigration
from tenancy import public_context, tenant_context
from tests.citus.conftest import (
    ClusterTenant,
    manage,
    run_subdomain,
    schema_node,
    tenants_on_both_workers,
    tenants_purge,
)
from tests.fixtures import table_columns

pytestmark = pytest.mark.citus

PROBES = "fleet_probe_probe"


@pytest.fixture
def fleet(django_db_blocker: Any) -> Iterator[tuple[ClusterTenant, ClusterTenant]]:
    """Two committed tenants on different workers for a child process to migrate, each with
    a probe row; removed afterwards, and the template and public's migration records put
    back to the migrations the rest of the run has on disk. No test transaction: what the
    test does is committed, as the child's work is."""
    with django_db_blocker.unblock():
        with public_context():
            saved = SchemaTemplate.objects.get(name="tenant")
        tenants = tenants_on_both_workers("mig-east", "mig-west")
        for each in tenants:
            with tenant_context(each.tenant), connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {PROBES} (name) VALUES (%s)", [each.tenant.subdomain])
        yield tenants
        tenants_purge(run_subdomain("mig-"))
        with public_context():
            SchemaTemplate.objects.filter(name="tenant").update(
                migration_state=saved.migration_state, sql=saved.sql, catalog=saved.catalog
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM django_migrations WHERE app = 'fleet_probe' "
                    "AND name <> '0001_initial'"
                )
    TEMPLATE.forget()


def _migrate(module: str, fleet: tuple[ClusterTenant, ClusterTenant]) -> tuple[int, dict[str, Any]]:
    done = manage(
        "tenants",
        "migrate",
        "--tenant",
        *(each.tenant.subdomain for each in fleet),
        "--json",
        env={"FLEET_PROBE_MIGRATIONS": module},
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    summaries = [line for line in lines if line.get("event") == "summary"]
    assert summaries, done.stdout + done.stderr
    return done.returncode, summaries[-1]


def _constraints(tenant: Tenant) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass",
            [f'"{tenant.schema_name}".{PROBES}'],
        )
        return {row[0] for row in cursor.fetchall()}


def _insert_refused(tenant: Tenant, column: str, value: int) -> bool:
    with tenant_context(tenant), connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute(f"INSERT INTO {PROBES} (name, {column}) VALUES ('bad', %s)", [value])
        except IntegrityError:
            return True
    return False


def _record(tenant: Tenant) -> TenantMigration:
    with public_context():
        return TenantMigration.objects.get(tenant=tenant)


def test_a_positive_integer_field_reaches_tenants_on_both_workers(
    fleet: tuple[ClusterTenant, ClusterTenant],
) -> None:
    returncode, summary = _migrate("migrations_citus", fleet)

    assert returncode == 0, summary
    assert (summary["migrated"], summary["failed"], summary["quarantined"]) == (2, [], [])
    for each in fleet:
        assert schema_node(each.tenant.schema_name) == each.node  # still distributed, in place
        assert {"rank", "code"} <= table_columns(each.tenant.schema_name, PROBES)
        # named as PostgreSQL names them, so `tenants verify` finds the template's schema
        assert {"fleet_probe_probe_rank_check", "fleet_probe_probe_code_key"} <= _constraints(
            each.tenant
        )
        assert _insert_refused(each.tenant, "rank", -1)  # the worker enforces the check
        with tenant_context(each.tenant), connection.cursor() as cursor:
            cursor.execute(f"SELECT name, rank FROM {PROBES}")
            assert cursor.fetchall() == [(each.tenant.subdomain, 0)]
        assert _record(each.tenant).state == "succeeded"


def test_python_migrations_get_the_same_rewriting_through_the_executor(
    fleet: tuple[ClusterTenant, ClusterTenant],
) -> None:
    returncode, summary = _migrate("migrations_citus_python", fleet)

    assert returncode == 0, summary
    assert (summary["migrated"], summary["failed"], summary["quarantined"]) == (2, [], [])
    for each in fleet:
        assert "fleet_probe_probe_score_check" in _constraints(each.tenant)
        assert _insert_refused(each.tenant, "score", -5)
        with tenant_context(each.tenant), connection.cursor() as cursor:
            cursor.execute(f"SELECT score FROM {PROBES}")
            assert cursor.fetchall() == [(len(each.tenant.subdomain),)]


def test_what_citus_cannot_run_fails_each_tenant_untouched_naming_the_statement(
    fleet: tuple[ClusterTenant, ClusterTenant],
) -> None:
    returncode, summary = _migrate("migrations_citus_refused", fleet)

    assert returncode == 1
    assert summary["migrated"] == 0
    refusal = (
        "UnsupportedOnDistributedSchemaError: "
        "changing a sequence (Django's way of changing an id column's type) is not supported "
        'on a distributed schema: ALTER SEQUENCE IF EXISTS "fleet_probe_probe_id_seq" AS integer;'
    )
    assert sorted(summary["failed"], key=lambda failed: failed["subdomain"]) == [
        {"subdomain": each.tenant.subdomain, "error": refusal}
        for each in sorted(fleet, key=lambda each: each.tenant.subdomain)
    ]
    for each in fleet:
        assert "flag" not in table_columns(each.tenant.schema_name, PROBES)  # nothing half-done
        record = _record(each.tenant)
        assert (record.state, record.failed_attempts, record.last_error) == ("failed", 1, refusal)
        with public_context():
            assert Tenant.objects.get(pk=each.tenant.pk).is_in_maintenance
