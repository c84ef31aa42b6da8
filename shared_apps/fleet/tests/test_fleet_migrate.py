"""`manage.py tenants migrate`: fast, per-tenant atomic, recorded and resumable.

The tests swap the migrations module of a small tenant app (`tests.fleet_app`) to put a new
migration on disk, run the command in a child process as an operator would, and look at
each tenant's schema afterwards. They migrate only tenants they created (`--tenant`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from shared_apps.audit.models import AuditRecord
from shared_apps.fleet.migrate.ledger import RunLock, fleet_plan
from shared_apps.fleet.provisioning import tenant_migration_state
from shared_apps.fleet.tests.conftest import (
    SUBDOMAINS,
    columns_of,
    events_of,
    probes_add,
    record_of,
    recorded_of,
)
from shared_apps.tenants.models import SchemaTemplate, Tenant, TenantMigration
from tenancy import public_context, tenant_context
from tenancy.db import tenant_connection
from tests.fixtures import ROOT, CliResult, table_columns

FLEET_SIZE = len(SUBDOMAINS)


def _state_with(module: str) -> str:
    with override_settings(MIGRATION_MODULES={"fleet_probe": f"tests.fleet_app.{module}"}):
        return tenant_migration_state()


def test_tenants_at_the_current_state_are_found_with_one_query(tenant_a: Tenant) -> None:
    with CaptureQueriesContext(tenant_connection()) as captured:
        plan = fleet_plan()
    queries = [q["sql"] for q in captured if "set_config('search_path'" not in q["sql"]]
    assert len(queries) == 1, queries
    assert plan.target_state == tenant_migration_state()
    assert tenant_a.subdomain not in {tenant.subdomain for tenant in plan.pending}


def test_a_new_migration_reaches_every_tenant_once_and_isrecorded_of(
    fleet: list[Tenant], migrate_cli: Callable[..., CliResult]
) -> None:
    dry = migrate_cli("migrations_next", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    pending = {line["subdomain"]: line["migrations"] for line in events_of(dry.stdout, "pending")}
    assert pending == {subdomain: ["fleet_probe.0002_probe_weight"] for subdomain in SUBDOMAINS}
    assert all("weight" not in columns_of(tenant) for tenant in fleet)  # a dry run changes nothing

    done = migrate_cli("migrations_next", "--parallel", "2", "--json")
    assert done.returncode == 0, done.stderr
    outcomes = events_of(done.stdout, "tenant")
    assert sorted(line["subdomain"] for line in outcomes) == SUBDOMAINS
    assert {line["status"] for line in outcomes} == {"migrated"}
    assert {line["method"] for line in outcomes} == {"sql"}  # compiled once, replayed
    target = _state_with("migrations_next")
    for tenant in fleet:
        assert "weight" in columns_of(tenant)
        assert recorded_of(tenant) == {"0001_initial", "0002_probe_weight"}
        record = record_of(tenant)
        assert (record.state, record.migration_state) == ("succeeded", target)
    with public_context():
        template = SchemaTemplate.objects.get(name="tenant")
    assert template.migration_state == target  # new tenants start on the new schema
    assert "weight" in template.sql

    again = migrate_cli("migrations_next", "--json")
    assert again.returncode == 0, again.stderr
    assert events_of(again.stdout, "start")[0]["pending"] == 0
    assert events_of(again.stdout, "start")[0]["skipped_up_to_date"] == FLEET_SIZE


def test_a_run_checks_the_schemas_it_migrated_and_leaves_the_others_to_verify(
    fleet: list[Tenant], migrate_cli: Callable[..., CliResult]
) -> None:
    done = migrate_cli("migrations_next", "--json")
    assert done.returncode == 0, done.stderr
    assert events_of(done.stdout, "verify")[0]["checked"] == FLEET_SIZE
    broken = fleet[0]
    with tenant_context(broken), connection.cursor() as cursor:
        cursor.execute("DROP TABLE fleet_probe_probe")

    again = migrate_cli("migrations_next", "--json")

    # Nothing migrated and nothing quarantined: no schema is read; `tenants verify` (and
    # its scheduled task) is what finds the broken one.
    assert again.returncode == 0, again.stderr
    assert events_of(again.stdout, "verify")[0]["checked"] == 0
    with public_context():
        assert not Tenant.objects.get(pk=broken.pk).is_quarantined


def test_a_release_spanning_two_apps_compiles_and_reaches_every_tenant(
    fleet: list[Tenant], migrate_cli: Callable[..., CliResult]
) -> None:
    done = migrate_cli("migrations_two_apps", "--parallel", "2", "--json")
    assert done.returncode == 0, done.stderr
    outcomes = events_of(done.stdout, "tenant")
    assert {line["status"] for line in outcomes} == {"migrated"}
    assert {line["method"] for line in outcomes} == {"sql"}
    assert {tuple(sorted(line["migrations"])) for line in outcomes} == {
        ("fleet_probe.0002_probe_label", "workspace.0002_settings_locale")
    }
    for tenant in fleet:
        assert "label" in columns_of(tenant)
        assert "locale" in table_columns(tenant.schema_name, "workspace_workspacesettings")


def test_a_tenant_whose_data_breaks_the_migration_is_reported_and_the_rest_migrate(
    fleet: list[Tenant], migrate_cli: Callable[..., CliResult]
) -> None:
    broken, *healthy = fleet
    probes_add(broken, "same", "same")
    probes_add(healthy[0], "one", "two")

    done = migrate_cli("migrations_unique", "--parallel", "2")
    assert done.returncode == 1
    # (Log lines go to stderr too, as JSON; the command's own message is the last line.)
    assert done.stderr.strip().splitlines()[-1] == (
        f"CommandError: 1 tenant(s) failed to migrate and are in maintenance: "
        f"{broken.subdomain}. The others are migrated; fix the cause and run `tenants migrate` "
        "again."
    )
    # The failing tenant is untouched: not even the column added before the failing step.
    assert "checked" not in columns_of(broken)
    assert recorded_of(broken) == {"0001_initial"}
    record = record_of(broken)
    assert record.state == "failed"
    assert record.failed_attempts == 1
    assert "probe_name_unique" in record.last_error or "duplicate" in record.last_error
    with public_context():
        assert Tenant.objects.get(pk=broken.pk).is_in_maintenance
    for tenant in healthy:
        assert "checked" in columns_of(tenant)
        assert record_of(tenant).state == "succeeded"
    with public_context():
        audit = AuditRecord.objects.filter(action="tenants.migrate").latest("id")
    assert audit.outcome == "failed"
    assert audit.detail["failed"][0]["subdomain"] == broken.subdomain

    with tenant_context(broken), connection.cursor() as cursor:
        cursor.execute("DELETE FROM fleet_probe_probe")
    retry = migrate_cli("migrations_unique", "--json")
    assert retry.returncode == 0, retry.stderr
    (outcome,) = events_of(retry.stdout, "tenant")
    assert (outcome["subdomain"], outcome["maintenance"]) == (broken.subdomain, "ended")
    assert "checked" in columns_of(broken)
    assert record_of(broken).state == "succeeded"
    with public_context():
        assert not Tenant.objects.get(pk=broken.pk).is_quarantined


def test_python_migrations_run_per_tenant_and_a_failure_rolls_back_that_tenant_only(
    fleet: list[Tenant], migrate_cli: Callable[..., CliResult]
) -> None:
    poisoned, other, *_ = fleet
    probes_add(poisoned, "fine", "poison")
    probes_add(other, "fine")

    done = migrate_cli("migrations_python", "--parallel", "2", "--json")
    assert done.returncode == 1
    outcomes = {line["subdomain"]: line for line in events_of(done.stdout, "tenant")}
    assert outcomes[poisoned.subdomain]["status"] == "failed"
    assert "poison" in outcomes[poisoned.subdomain]["error"]
    assert {outcomes[t.subdomain]["method"] for t in fleet[1:]} == {"python"}
    assert "checked" not in columns_of(poisoned)
    assert recorded_of(poisoned) == {"0001_initial"}
    assert (record_of(poisoned).state, record_of(poisoned).failed_attempts) == ("failed", 1)
    assert record_of(other).state == "succeeded"
    with tenant_context(other), connection.cursor() as cursor:
        cursor.execute("SELECT checked FROM fleet_probe_probe")
        assert cursor.fetchall() == [(True,)]


def test_a_run_killed_midway_leaves_no_tenant_half_migrated_and_a_rerun_completes(
    fleet: list[Tenant], manage_cli: Callable[..., CliResult]
) -> None:
    db = tenant_connection().settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "FLEET_PROBE_MIGRATIONS": "migrations_slow",
    }
    run = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "tenants",
            "migrate",
            "--parallel",
            "2",
            "--json",
            "--tenant",
            *SUBDOMAINS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert run.stdout is not None
    finished = 0
    for line in run.stdout:
        finished += line.startswith('{"event": "tenant"')
        if finished == 2:
            run.send_signal(signal.SIGKILL)
            break
    run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL

    def consistent(tenant: Tenant) -> bool:
        columns = columns_of(tenant) >= {"first_half", "second_half"}
        half = bool(columns_of(tenant) & {"first_half", "second_half"})
        recorded = "0002_probe_slow" in recorded_of(tenant)
        assert columns == half == recorded, f"{tenant.subdomain} is half-migrated"
        return columns

    wait_for_workers_to_die(fleet)
    migrated_before = [tenant for tenant in fleet if consistent(tenant)]
    assert 2 <= len(migrated_before) < FLEET_SIZE

    rerun = manage_cli(
        "tenants",
        "migrate",
        "--json",
        "--tenant",
        *SUBDOMAINS,
        env={"FLEET_PROBE_MIGRATIONS": "migrations_slow"},
    )
    assert rerun.returncode == 0, rerun.stderr
    assert events_of(rerun.stdout, "start")[0]["pending"] == FLEET_SIZE - len(migrated_before)
    assert all(consistent(tenant) for tenant in fleet)


def wait_for_workers_to_die(fleet: list[Tenant]) -> None:
    """The killed run's workers die with it; their open transactions roll back. Wait until
    no session of theirs holds a tenant's lock."""
    from tests.infra import wait_for

    def idle() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> "
                "pg_backend_pid()"
            )
            row = cursor.fetchone()
        return row is not None and row[0] == 0

    wait_for(idle, 10, "the killed run's workers still hold tenant locks")


def test_bad_input_is_refused_with_one_line_and_nothing_runs(
    manage_cli: Callable[..., CliResult], db: None
) -> None:
    unknown = manage_cli("tenants", "migrate", "--tenant", "alpha", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[-1] == (
        "CommandError: no tenant with subdomain 'nope'"
    )
    assert unknown.stdout == ""

    parallel = manage_cli("tenants", "migrate", "--parallel", "0")
    assert parallel.returncode == 1
    assert parallel.stderr.strip().splitlines()[-1] == (
        "CommandError: --parallel must be between 1 and 64"
    )


def test_a_second_run_is_refused_while_one_is_running(
    manage_cli: Callable[..., CliResult], db: None
) -> None:
    with RunLock() as acquired:
        assert acquired
        second = manage_cli("tenants", "migrate", "--json")
    assert second.returncode == 1
    assert "another `tenants migrate` is running" in second.stderr


def test_tenants_that_fall_behind_during_a_run_are_migrated_by_the_same_run(
    fleet: list[Tenant],
) -> None:
    import io

    from django.core.management.base import OutputWrapper

    from shared_apps.fleet.migrate.report import MigrationReport
    from shared_apps.fleet.migrate.run import fleet_migrate

    first, late, *_ = fleet
    with public_context():
        TenantMigration.objects.filter(tenant=first).update(migration_state="older")

    class LateSignup(MigrationReport):
        """While the run goes on, the previous release signs up a tenant (old template)."""

        def tenant(self, outcome: Any) -> None:
            super().tenant(outcome)
            if outcome.subdomain == first.subdomain:
                with public_context():
                    TenantMigration.objects.filter(tenant=late).update(migration_state="older")

    report = LateSignup(OutputWrapper(io.StringIO()), json_lines=True)
    summary = fleet_migrate(report, subdomains=SUBDOMAINS, parallel=1, dry_run=False, actor="test")
    assert summary.pending == 2
    assert not summary.failed
    assert record_of(late).migration_state == tenant_migration_state()


def test_people_get_a_progress_bar_with_an_eta_and_failures_on_their_own_line() -> None:
    import io

    from django.core.management.base import OutputWrapper

    from shared_apps.fleet.migrate.ledger import FleetPlan, TenantOutcome, TenantTarget
    from shared_apps.fleet.migrate.report import MigrationReport

    out = io.StringIO()
    report = MigrationReport(OutputWrapper(out), json_lines=False)
    targets = [
        TenantTarget(id=f"{n}", subdomain=f"t{n}", schema_name="", name="", status="active")
        for n in range(4)
    ]
    report.start(FleetPlan(target_state="x", pending=targets, up_to_date=996), parallel=2)
    report.tenant(TenantOutcome(subdomain="t0", tenant_id="0", status="migrated"))
    report.tenant(TenantOutcome(subdomain="t1", tenant_id="1", status="failed", error="boom"))
    text = out.getvalue()
    assert "tenants: 4 to check, 996 up to date (skipped); 2 worker(s)" in text
    assert "FAILED t1: boom" in text
    bar = text.rsplit("\r", 1)[-1]
    assert bar.startswith("\033[K[###############---------------] 2/4  50%")
    assert "ETA 0:0" in bar
    assert bar.endswith("failed 1")
