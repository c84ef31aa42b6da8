"""Rollouts in waves: canaries first, waves after, stopped when too many tenants fail.

A tenant whose migration fails is put in maintenance: its pages answer a maintenance page
and its API a problem (503, Retry-After), its tasks are skipped, until a run migrates it.
The release here (`migrations_python`) fails on a tenant holding a probe named 'poison'.
The fleet fixture's six tenants are created oldest first: `fleet[0]` is the canary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from shared_apps.audit.models import AuditRecord
from shared_apps.fleet.migrate.ledger import TenantTarget, fleet_plan
from shared_apps.fleet.migrate.waves import RolloutPolicy
from shared_apps.fleet.tests.conftest import (
    SUBDOMAINS,
    columns_of,
    events_of,
    probes_add,
    record_of,
)
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tests.fixtures import CliResult
from tests.infra import task_report

RELEASE = "migrations_python"


def _tenant(tenant: Tenant) -> Tenant:
    with public_context():
        return Tenant.objects.get(pk=tenant.pk)


def _poison_remove(tenant: Tenant) -> None:
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("DELETE FROM fleet_probe_probe WHERE name = 'poison'")


def test_a_failing_canary_stops_the_rollout_and_its_workspace_is_in_maintenance(
    fleet: list[Tenant],
    migrate_cli: Callable[..., CliResult],
    committed: tuple[Tenant, Tenant],
    celery_worker_log: Path,
    settings: Any,
) -> None:
    settings.TENANT_ROUTE_RECHECK_SECONDS = 0  # see the child process's announcement at once
    canary, *others = fleet
    tenant_a, _ = committed
    probes_add(canary, "poison")
    host = Client(HTTP_HOST=f"{canary.subdomain}.localhost")
    assert host.get("/login/").status_code == 200  # routed, and the route is warm

    # when: the release starts with one canary, then waves of two
    done = migrate_cli(RELEASE, "--canary", "1", "--wave-size", "2", "--json")

    # then: the canary fails, no further wave starts, and the command says so
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"CommandError: 1 tenant(s) failed to migrate and are in maintenance: {canary.subdomain}."
        " The rollout stopped after wave 1 (more than 0 failure(s)); 5 tenant(s) were not "
        "tried and keep the previous release's schema. Fix the cause and run `tenants migrate` "
        "again."
    )
    assert events_of(done.stdout, "start")[0]["rollout"] == {
        "canary": 1,
        "wave_size": 2,
        "max_failures": 0,
    }
    assert events_of(done.stdout, "wave") == [
        {"event": "wave", "wave": 1, "kind": "canary", "tenants": 1}
    ]
    (outcome,) = events_of(done.stdout, "tenant")
    assert (outcome["subdomain"], outcome["status"], outcome["wave"]) == (
        canary.subdomain,
        "failed",
        1,
    )
    assert outcome["maintenance"] == "started"
    assert "poison" in outcome["error"]
    assert events_of(done.stdout, "stopped") == [
        {"event": "stopped", "after_wave": 1, "failures": 1, "max_failures": 0, "held": 5}
    ]
    summary = events_of(done.stdout, "summary")[0]
    assert (summary["stopped_after_wave"], summary["held"]) == (1, 5)
    assert summary["maintenance_started"] == [canary.subdomain]
    assert summary["template_refreshed"] is False  # the previous release still provisions

    # the ledger has each tenant's outcome; the held ones are untouched and pending
    assert (record_of(canary).state, record_of(canary).failed_attempts) == ("failed", 1)
    for tenant in others:
        assert "checked" not in columns_of(tenant)
        assert record_of(tenant).state == "pending"
        assert not _tenant(tenant).is_quarantined

    # the canary's workspace is in maintenance: a page and a problem, both 503 Retry-After
    stored = _tenant(canary)
    assert stored.quarantine_cause == Tenant.QuarantineCause.MIGRATION_FAILED
    assert stored.quarantine_reason.startswith("migration failed: ValueError")
    page = host.get("/login/")
    assert (page.status_code, page["Retry-After"]) == (503, "300")
    assert b"down for maintenance" in page.content
    assert b"Sign in" not in page.content
    api = host.get("/api/v1/projects/")
    assert (api.status_code, api["Content-Type"], api["Retry-After"]) == (
        503,
        "application/problem+json",
        "300",
    )
    assert api.json()["code"] == "tenant_maintenance"
    # no other workspace is affected
    assert Client(HTTP_HOST=f"{others[0].subdomain}.localhost").get("/login/").status_code == 200
    assert Client(HTTP_HOST="alpha.localhost").get("/api/v1/projects/").status_code != 503

    # its tasks are skipped, and the skip is logged with the reason; tenant A's still run
    assert task_report("probe.where_am_i", canary) is None
    skipped = [
        line
        for line in celery_worker_log.read_text().splitlines()
        if "task skipped: tenant not served" in line and str(canary.id) in line
    ]
    assert skipped
    assert '"reason": "maintenance"' in skipped[-1]
    in_a = task_report("probe.where_am_i", tenant_a)
    assert in_a is not None
    assert in_a["tenant"] == "alpha"

    with public_context():
        (quarantine,) = AuditRecord.objects.filter(action="tenant.quarantine", tenant_id=canary.id)
    assert quarantine.detail["cause"] == "migration_failed"

    # when: the data is fixed and the release runs again, with the same waves
    _poison_remove(canary)
    again = migrate_cli(RELEASE, "--canary", "1", "--wave-size", "2", "--json")

    # then: every tenant is migrated, wave by wave, and the maintenance is over
    assert again.returncode == 0, again.stderr
    assert [(w["wave"], w["kind"], w["tenants"]) for w in events_of(again.stdout, "wave")] == [
        (1, "canary", 1),
        (2, "wave", 2),
        (3, "wave", 2),
        (4, "wave", 1),
    ]
    outcomes = {line["subdomain"]: line for line in events_of(again.stdout, "tenant")}
    assert sorted(outcomes) == SUBDOMAINS
    assert {line["status"] for line in outcomes.values()} == {"migrated"}
    assert outcomes[canary.subdomain]["maintenance"] == "ended"
    assert events_of(again.stdout, "summary")[0]["maintenance_ended"] == [canary.subdomain]
    for tenant in fleet:
        assert "checked" in columns_of(tenant)
        assert record_of(tenant).state == "succeeded"
        assert not _tenant(tenant).is_quarantined
    assert host.get("/login/").status_code == 200
    with public_context():
        (release,) = AuditRecord.objects.filter(action="tenant.release", tenant_id=canary.id)
    assert release.detail["cause"] == "migration_failed"


def test_waves_go_on_while_failures_stay_within_the_limit(
    fleet: list[Tenant], migrate_cli: Callable[..., CliResult]
) -> None:
    # given: the third and fifth oldest tenants break the release
    probes_add(fleet[2], "poison")
    probes_add(fleet[4], "poison")

    # when: one canary, waves of two, at most one failure
    done = migrate_cli(
        RELEASE, "--canary", "1", "--wave-size", "2", "--max-failures", "1", "--json"
    )

    # then: wave 2 has one failure and the run goes on; wave 3 has the second and it stops
    assert done.returncode == 1
    waves = events_of(done.stdout, "wave_done")
    assert [(w["wave"], w["failed"], w["failures_so_far"]) for w in waves] == [
        (1, [], 0),
        (2, [fleet[2].subdomain], 1),
        (3, [fleet[4].subdomain], 2),
    ]
    assert events_of(done.stdout, "stopped")[0]["held"] == 1
    for migrated in (fleet[0], fleet[1], fleet[3]):
        assert "checked" in columns_of(migrated)
        assert not _tenant(migrated).is_quarantined
    for failed in (fleet[2], fleet[4]):
        assert "checked" not in columns_of(failed)
        assert _tenant(failed).is_in_maintenance
    held = fleet[5]
    assert "checked" not in columns_of(held)
    assert record_of(held).state == "pending"
    assert not _tenant(held).is_quarantined


def test_a_run_without_waves_tries_every_tenant_whatever_fails(
    fleet: list[Tenant], migrate_cli: Callable[..., CliResult]
) -> None:
    probes_add(fleet[0], "poison")
    done = migrate_cli(RELEASE, "--json")
    assert done.returncode == 1
    assert events_of(done.stdout, "stopped") == []
    statuses = {line["subdomain"]: line["status"] for line in events_of(done.stdout, "tenant")}
    assert statuses == {fleet[0].subdomain: "failed"} | {
        tenant.subdomain: "migrated" for tenant in fleet[1:]
    }
    assert _tenant(fleet[0]).is_in_maintenance


def test_a_tenant_left_in_maintenance_at_the_current_migrations_is_planned_again(
    tenant_b: Tenant,
) -> None:
    # (a run stopped after migrating it, before it could lift the maintenance)
    with public_context():
        Tenant.objects.filter(pk=tenant_b.pk).update(
            quarantined_at="2026-01-01T00:00:00Z",
            quarantine_reason="migration failed: boom",
            quarantine_cause=Tenant.QuarantineCause.MIGRATION_FAILED,
        )
    plan = fleet_plan(subdomains=[tenant_b.subdomain])
    assert [(t.subdomain, t.in_maintenance) for t in plan.pending] == [(tenant_b.subdomain, True)]


def _targets(count: int) -> list[TenantTarget]:
    return [
        TenantTarget(id=f"{n}", subdomain=f"t{n}", schema_name="", name="", status="active")
        for n in range(count)
    ]


def test_waves_are_cut_from_the_oldest_canaries_first() -> None:
    tenants = _targets(7)
    waves = RolloutPolicy(canary=2, wave_size=3).waves(tenants)
    assert [(w.number, w.kind, [t.subdomain for t in w.tenants]) for w in waves] == [
        (1, "canary", ["t0", "t1"]),
        (2, "wave", ["t2", "t3", "t4"]),
        (3, "wave", ["t5", "t6"]),
    ]
    assert [len(w.tenants) for w in RolloutPolicy(canary=3).waves(tenants)] == [3, 4]
    assert [len(w.tenants) for w in RolloutPolicy(wave_size=5).waves(tenants)] == [5, 2]
    assert [len(w.tenants) for w in RolloutPolicy().waves(tenants)] == [7]
    assert [len(w.tenants) for w in RolloutPolicy(canary=10).waves(tenants)] == [7]
    assert RolloutPolicy(canary=1).waves([]) == []


@pytest.mark.parametrize(
    ("policy", "failures", "stops"),
    [
        (RolloutPolicy(canary=1), 0, False),
        (RolloutPolicy(canary=1), 1, True),
        (RolloutPolicy(wave_size=10, max_failures=2), 2, False),
        (RolloutPolicy(wave_size=10, max_failures=2), 3, True),
        (RolloutPolicy(), 50, False),  # a run without waves never stops early
    ],
)
def test_a_staged_run_stops_once_failures_pass_the_limit(
    policy: RolloutPolicy, failures: int, stops: bool
) -> None:
    assert policy.stops_after(failures) is stops


def test_rollout_options_are_checked_before_anything_runs(
    manage_cli: Callable[..., CliResult], db: None
) -> None:
    alone = manage_cli("tenants", "migrate", "--max-failures", "2")
    assert alone.returncode == 1
    assert alone.stderr.strip().splitlines()[-1] == (
        "CommandError: --max-failures needs --canary or --wave-size (it is checked between waves)"
    )
    negative = manage_cli("tenants", "migrate", "--canary", "-1")
    assert negative.returncode == 1
    assert negative.stderr.strip().splitlines()[-1] == "CommandError: --canary must be 0 or more"
    assert alone.stdout == negative.stdout == ""


def test_people_see_each_wave_and_where_the_rollout_stopped() -> None:
    import io

    from django.core.management.base import OutputWrapper

    from shared_apps.fleet.migrate.ledger import FleetPlan, TenantOutcome
    from shared_apps.fleet.migrate.report import MigrationReport
    from shared_apps.fleet.migrate.run import MigrationSummary
    from shared_apps.fleet.migrate.waves import Wave

    out = io.StringIO()
    report = MigrationReport(OutputWrapper(out), json_lines=False)
    policy = RolloutPolicy(canary=1, wave_size=2)
    tenants = _targets(3)
    report.start(
        FleetPlan(target_state="x", pending=tenants, up_to_date=7), parallel=2, policy=policy
    )
    report.wave(Wave(number=1, kind="canary", tenants=tenants[:1]), waves=3)
    failed = TenantOutcome(subdomain="t0", tenant_id="0", status="failed", error="boom", wave=1)
    failed.maintenance = "started"
    report.tenant(failed)
    summary = MigrationSummary(public_migrations=[], pending=3, up_to_date=7, policy=policy)
    summary.failed, summary.stopped_after_wave, summary.held = [failed], 1, 2
    report.stopped(summary)
    text = out.getvalue()
    assert "rollout: 1 canary tenant(s), then waves of 2; stops when more than 0 fail" in text
    assert "wave 1/3 (canary): 1 tenant(s)" in text
    assert "FAILED t0: boom" in text
    assert "t0 is in maintenance until a run migrates it" in text
    assert "STOPPED after wave 1: 1 failure(s), more than 0; 2 tenant(s) held (not tried)" in text
