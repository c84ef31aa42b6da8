"""A tenant whose schema lost a table is quarantined: never served public's table instead.

The tenant's search_path is `"t_<hex>", public`: with its `accounts_user` gone, PostgreSQL
resolves the name to public's, where the platform staff are. `tenants verify` (also the
last step of `tenants migrate`, and a beat task) finds it, takes the tenant out of routing
and out of the workers, and releases it once the schema is whole again.

The broken tenant is one of its own (not the session's tenant B): dropping `accounts_user`
takes the foreign keys of other tables with it, which no later test should inherit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.fleet.creation import tenant_create
from shared_apps.fleet.verify import fleet_schema_check, fleet_verify
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tests.factories import TEST_PASSWORD, UserFactory
from tests.fixtures import CliResult, sign_in, tenant_purge
from tests.infra import task_report

BROKEN = "gamma"
STAFF_EMAIL = "staff@platform.test"


@pytest.fixture
def broken(committed: tuple[Tenant, Tenant]) -> Iterator[Tenant]:
    """A committed tenant whose `accounts_user` was dropped by hand, and a staff user in
    public's table of that name; both removed afterwards."""
    tenant = tenant_create(
        name="Gamma",
        subdomain=BROKEN,
        owner_email=f"owner@{BROKEN}.test",
        owner_password=TEST_PASSWORD,
    ).tenant
    with public_context():
        UserFactory.create(email=STAFF_EMAIL, role=User.Role.OWNER)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{tenant.schema_name}".accounts_user CASCADE')
    yield tenant
    tenant_purge(BROKEN)
    # Raw: the ORM's cascade would look for tenant tables (projects) on public.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM public.accounts_user WHERE email = %s", [STAFF_EMAIL])


def _repair(tenant: Tenant) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE TABLE "{tenant.schema_name}".accounts_user '
            "(LIKE public.accounts_user INCLUDING ALL)"
        )


def _quarantined(tenant: Tenant) -> bool:
    with public_context():
        return Tenant.objects.get(pk=tenant.pk).is_quarantined


def _audit(action: str, tenant: Tenant) -> list[AuditRecord]:
    with public_context():
        return list(AuditRecord.objects.filter(action=action, tenant_id=tenant.id))


def test_a_missing_table_reads_public_until_quarantined_then_the_host_answers_503(
    broken: Tenant,
    committed: tuple[Tenant, Tenant],
    manage_cli: Callable[..., CliResult],
    celery_worker_log: Path,
    settings: Any,
) -> None:
    tenant_a, _ = committed
    settings.TENANT_ROUTE_RECHECK_SECONDS = 0  # see the child process's announcement at once
    gamma = Client(HTTP_HOST=f"{BROKEN}.localhost")
    assert gamma.get("/login/").status_code == 200  # routed, and the route is warm

    # given: the hazard itself, a query of the tenant's users answered from public's table
    with tenant_context(broken):
        assert STAFF_EMAIL in set(User.objects.values_list("email", flat=True))

    # when: an operator (or the beat task) verifies the fleet
    verified = manage_cli("tenants", "verify", "--json")

    # then: the tenant is named, quarantined, and the command fails
    assert verified.returncode == 1
    assert verified.stderr.splitlines()[-1] == f"CommandError: 1 tenant(s) quarantined: {BROKEN}"
    report = json.loads(verified.stdout)
    assert report["quarantined"] == [BROKEN]
    assert report["newly_quarantined"] == [BROKEN]
    assert report["unchecked"] == []
    assert [tenant["subdomain"] for tenant in report["tenants"]] == [BROKEN]
    assert report["drifted"] == [BROKEN]
    drift = report["tenants"][0].pop("drift")
    # the table, its sequence, and the foreign keys that CASCADE took from other tables
    assert drift["missing"]["relation"] == ["accounts_user", "accounts_user_id_seq"]
    assert "accounts_user_groups" in " ".join(drift["missing"]["constraint"])
    assert (drift["extra"], drift["changed"]) == ({}, {})
    assert report["tenants"][0] | {"id": ""} == {
        "id": "",
        "subdomain": BROKEN,
        "status": "active",
        "checked": True,
        "schema_missing": False,
        "missing_tables": ["accounts_user"],
        "missing_columns": [],
        "shadowing_tables": [],
        "extra_tables": [],
        "quarantined": True,
    }
    assert _quarantined(broken)
    with public_context():
        reason = Tenant.objects.get(pk=broken.pk).quarantine_reason
    assert reason == "missing tables: accounts_user"

    # its host serves nothing, public's staff least of all; tenant A is untouched
    page = gamma.get("/login/")
    assert page.status_code == 503
    assert b"Sign in" not in page.content
    signed_in = sign_in(gamma, STAFF_EMAIL, TEST_PASSWORD)
    assert signed_in.status_code == 503
    assert "sessionid" not in signed_in.cookies  # no session was started for anyone
    api = gamma.get("/api/v1/projects/")
    assert api.status_code == 503
    assert api["Content-Type"] == "application/problem+json"
    assert api.json()["code"] == "tenant_unavailable"
    assert Client(HTTP_HOST="alpha.localhost").get("/login/").status_code == 200

    # its tasks are skipped by the worker; tenant A's still run
    assert task_report("probe.where_am_i", broken) is None
    in_a = task_report("probe.where_am_i", tenant_a)
    assert in_a is not None
    assert in_a["tenant"] == "alpha"

    # no command runs inside it either (clearsessions would empty public's sessions)
    refused = manage_cli("tenants", "run", BROKEN, "--", "check")
    assert refused.returncode == 1
    assert "is quarantined (missing tables: accounts_user)" in refused.stderr

    # a second verify changes nothing and still fails
    again = manage_cli("tenants", "verify", "--json")
    assert again.returncode == 1
    assert json.loads(again.stdout)["newly_quarantined"] == []

    # when: the table is recreated, and the next release runs `tenants migrate`
    _repair(broken)
    migrated = manage_cli("tenants", "migrate", "--tenant", BROKEN, "--json")

    # then: the release step finds the schema whole and routes the tenant again
    assert migrated.returncode == 0, migrated.stderr
    events = [json.loads(line) for line in migrated.stdout.splitlines() if line.startswith("{")]
    verify_event = next(event for event in events if event["event"] == "verify")
    assert (verify_event["released"], verify_event["quarantined"]) == ([BROKEN], [])
    assert events[-1]["event"] == "summary"
    assert (events[-1]["quarantined"], events[-1]["released"]) == ([], [BROKEN])
    assert not _quarantined(broken)
    assert gamma.get("/login/").status_code == 200
    assert manage_cli("tenants", "verify").returncode == 0

    # and the trail has one quarantine and one release, with what was missing
    (quarantine,) = _audit("tenant.quarantine", broken)
    assert quarantine.outcome == AuditRecord.Outcome.SUCCEEDED
    assert quarantine.subdomain == BROKEN
    assert quarantine.detail["missing_tables"] == ["accounts_user"]
    assert quarantine.detail["reason"] == "missing tables: accounts_user"
    (release,) = _audit("tenant.release", broken)
    assert release.outcome == AuditRecord.Outcome.SUCCEEDED


def test_verify_prints_the_mismatch_for_people(
    broken: Tenant, manage_cli: Callable[..., CliResult]
) -> None:
    done = manage_cli("tenants", "verify")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    # progress first: the one catalog read, then the comparison
    assert lines[0].startswith("read the catalog of 3 tenant(s) in ")
    assert lines[1].startswith("compared 3 tenant(s) with the template in ")
    assert lines[2] == f"QUARANTINED {BROKEN}: missing tables: accounts_user"
    assert lines[-1] == (
        "3 tenant(s) checked, 0 not at the template's migrations (not checked), "
        "1 drifted, 1 quarantined, 0 released"
    )


def test_drift_that_breaks_nothing_is_reported_per_tenant_and_served(
    tenant_b: Tenant, tenant_a: Tenant, db: None
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE INDEX by_hand ON "{tenant_b.schema_name}".projects_project (name)')
        cursor.execute(
            f'ALTER TABLE "{tenant_b.schema_name}".projects_task ALTER title TYPE varchar(300)'
        )
        cursor.execute(f"COMMENT ON TABLE \"{tenant_b.schema_name}\".projects_task IS 'hand'")
        cursor.execute(f'ALTER TABLE "{tenant_b.schema_name}".projects_project DROP description')
    done = fleet_verify(actor="test")
    (beta,) = done.findings
    assert (beta.subdomain, beta.is_broken, done.still_quarantined) == ("beta", False, [])
    assert beta.drift.as_dict() == {
        "missing": {"column": ["projects_project.description"]},
        "extra": {"comment": ["projects_task"], "index": ["projects_project.by_hand"]},
        "changed": {"column": ["projects_task.title"], "column_order": ["projects_project"]},
    }
    assert done.drifted == ["beta"]  # tenant A, the same as the template, is not named
    assert beta.drift.lines() == [
        "missing column: projects_project.description",
        "extra comment: projects_task",
        "extra index: projects_project.by_hand",
        "changed column: projects_task.title",
        "changed column_order: projects_project",
    ]


@pytest.mark.parametrize("extra_tenants", [0, 3])
def test_the_fleet_is_checked_with_one_query(
    session_tenants: tuple[Tenant, Tenant],
    db: None,
    extra_tenants: int,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    for number in range(extra_tenants):
        tenant_create(
            name=f"Extra {number}",
            subdomain=f"extra-{number}",
            owner_email=f"owner@extra-{number}.test",
            owner_password=TEST_PASSWORD,
        )
    with public_context():
        Tenant.objects.exists()  # the connection is on public already
        with django_assert_num_queries(1):
            check = fleet_schema_check()
    assert len(check.tenants) == 2 + extra_tenants
    assert all(tenant.is_whole for tenant in check.tenants)
    assert [tenant.extra_tables for tenant in check.tenants] == [[]] * (2 + extra_tenants)


def test_columns_missing_from_a_table_public_also_has_and_tables_hiding_public_ones(
    tenant_b: Tenant, db: None
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{tenant_b.schema_name}".django_session DROP expire_date')
        cursor.execute(
            f'CREATE TABLE "{tenant_b.schema_name}".billing_plan (id int)'  # public's name
        )
        cursor.execute(f'CREATE TABLE "{tenant_b.schema_name}".scratch (id int)')
    (beta,) = [t for t in fleet_schema_check().tenants if t.subdomain == "beta"]
    assert beta.checked
    assert beta.missing_tables == []
    assert beta.missing_columns == ["django_session.expire_date"]
    assert beta.shadowing_tables == ["billing_plan"]
    assert beta.extra_tables == ["billing_plan", "scratch"]
    assert beta.reason() == (
        "missing columns: django_session.expire_date; tables hiding public's: billing_plan"
    )


def test_an_extra_table_of_its_own_is_reported_but_not_quarantined(
    tenant_b: Tenant, db: None
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE TABLE "{tenant_b.schema_name}".scratch (id int)')
    done = fleet_verify(actor="test")
    assert done.still_quarantined == []
    assert [(t.subdomain, t.extra_tables) for t in done.findings] == [("beta", ["scratch"])]


def test_a_tenant_behind_the_templates_migrations_is_not_checked(
    tenant_b: Tenant, db: None
) -> None:
    from shared_apps.tenants.models import TenantMigration

    with public_context():
        TenantMigration.objects.filter(tenant=tenant_b).update(migration_state="older")
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{tenant_b.schema_name}".django_session')
    done = fleet_verify(actor="test")
    assert done.unchecked == ["beta"]
    assert done.still_quarantined == []  # a release not migrated yet is no fault of its own


def test_a_tenant_whose_schema_is_gone_is_quarantined(tenant_b: Tenant, db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER SCHEMA "{tenant_b.schema_name}" RENAME TO t_elsewhere')
    done = fleet_verify(actor="test")
    assert done.quarantined == ["beta"]
    (beta,) = done.findings
    assert (beta.schema_missing, beta.checked, beta.reason()) == (True, False, "schema missing")
    with public_context():
        assert Tenant.objects.get(pk=tenant_b.pk).quarantine_reason == "schema missing"
