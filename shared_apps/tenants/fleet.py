"""`tenants migrate` from end to end: public schema, tenants, provisioning template, report."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from shared_apps.audit.services import audit_record
from shared_apps.tenants.migrator import (
    FleetPlan,
    SchemaMigrator,
    TenantOutcome,
    fleet_migrate,
    fleet_plan,
)
from shared_apps.tenants.provisioning import TEMPLATE, pool_fill, template_refresh
from tenancy import public_context

BAR_WIDTH = 30
REPLAN_ROUNDS = 3


@dataclass
class MigrationSummary:
    public_migrations: list[str]
    pending: int
    up_to_date: int
    migrated: int = 0
    already_current: int = 0
    failed: list[TenantOutcome] = field(default_factory=list)
    template_refreshed: bool = False
    seconds: float = 0.0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "public_migrations": self.public_migrations, "pending": self.pending,
            "skipped_up_to_date": self.up_to_date, "migrated": self.migrated,
            "already_current": self.already_current,
            "failed": [{"subdomain": o.subdomain, "error": o.error} for o in self.failed],
            "template_refreshed": self.template_refreshed, "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
        }  # fmt: skip


class MigrationReport:
    """Progress for people (a bar with an ETA on a terminal) or JSON lines for machines."""

    def __init__(self, out: OutputWrapper, *, json_lines: bool) -> None:
        self.out = out
        self.json_lines = json_lines
        self.total = 0
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()

    def _line(self, event: str, **data: Any) -> None:
        self.out.write(json.dumps({"event": event, **data}))

    def public(self, names: list[str], *, dry_run: bool) -> None:
        if self.json_lines:
            self._line("public", migrations=names, dry_run=dry_run)
        elif names:
            verb = "would apply" if dry_run else "applied"
            shown = ", ".join(names) if len(names) <= 5 else f"{names[0]} … {names[-1]}"
            self.out.write(f"public schema: {verb} {len(names)} migration(s): {shown}")
        else:
            self.out.write("public schema: up to date")

    def start(self, plan: FleetPlan, *, parallel: int) -> None:
        self.total = len(plan.pending)
        self.started = time.monotonic()
        if self.json_lines:
            self._line(
                "start", pending=self.total, skipped_up_to_date=plan.up_to_date,
                parallel=parallel,
            )  # fmt: skip
        else:
            self.out.write(
                f"tenants: {self.total} to check, {plan.up_to_date} up to date (skipped); "
                f"{parallel} worker(s)"
            )

    def pending(self, subdomain: str, names: list[str]) -> None:
        if self.json_lines:
            self._line("pending", subdomain=subdomain, migrations=names)
        else:
            self.out.write(f"  {subdomain}: {', '.join(names) if names else 'up to date'}")

    def tenant(self, outcome: TenantOutcome) -> None:
        self.done += 1
        self.failed += outcome.status == "failed"
        if self.json_lines:
            self._line("tenant", **outcome.as_dict())
            return
        if outcome.status == "failed":
            self.out.write(f"\r\033[K  FAILED {outcome.subdomain}: {outcome.error}")
        self.out.write(f"\r\033[K{self._bar()}", ending="")
        self.out.flush()

    def _bar(self) -> str:
        elapsed = time.monotonic() - self.started
        share = self.done / self.total if self.total else 1.0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else 0.0
        filled = int(BAR_WIDTH * share)
        return (
            f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {self.done}/{self.total} "
            f"{share:4.0%}  {rate:,.0f}/s  ETA {_clock(remaining)}  failed {self.failed}"
        )

    def tenants_done(self) -> None:
        if self.total and not self.json_lines:
            self.out.write("")  # ends the progress bar's line

    def template(self, refreshed: bool, pooled: int) -> None:
        if self.json_lines:
            self._line("template", refreshed=refreshed, pool_schemas_made=pooled)
        elif refreshed:
            self.out.write(f"provisioning template rebuilt; {pooled} pooled schema(s) made")

    def summary(self, summary: MigrationSummary) -> None:
        if self.json_lines:
            self._line("summary", **summary.as_dict())
            return
        if summary.dry_run:
            self.out.write(
                f"dry run: {summary.pending} tenant(s) to check, {summary.up_to_date} up to "
                "date; nothing was changed"
            )
            return
        self.out.write(
            f"done in {summary.seconds:.1f}s: {summary.migrated} migrated, "
            f"{summary.already_current} already current, {summary.up_to_date} skipped, "
            f"{len(summary.failed)} failed"
        )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}:{secs:02d}"


def public_pending() -> tuple[bool, list[str]]:
    """Whether the public schema lacks migrations, and which change it: Django records the
    tenant-only apps' migrations in public too, but they change nothing there."""
    from tenancy.db_router import tenant_only_labels

    with public_context():
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    tenant_only = tenant_only_labels()
    shown = [
        f"{migration.app_label}.{migration.name}"
        for migration, _ in plan
        if migration.app_label not in tenant_only
    ]
    return bool(plan), shown


def run_migrate(
    report: MigrationReport, *, subdomains: list[str], parallel: int, dry_run: bool, actor: str
) -> MigrationSummary:
    """Public schema first, then the pending tenants, then the provisioning template."""
    started = time.monotonic()
    public_behind, public = public_pending()
    report.public(public, dry_run=dry_run)
    if public_behind and not dry_run:
        with public_context():
            call_command(
                "migrate_schemas", shared=True, interactive=False, verbosity=0, skip_checks=True
            )
    TEMPLATE.forget()
    # A dry run leaves the public schema as it is: it may not have the outcomes table yet.
    plan = fleet_plan(subdomains=subdomains, records=not (dry_run and public_behind))
    summary = MigrationSummary(
        public_migrations=public, pending=len(plan.pending), up_to_date=plan.up_to_date,
        dry_run=dry_run,
    )  # fmt: skip
    if dry_run:
        migrator = SchemaMigrator(target_state=plan.target_state)
        for tenant in plan.pending:
            report.pending(tenant.subdomain, migrator.pending_migrations(tenant))
        summary.seconds = time.monotonic() - started
        report.summary(summary)
        audit_record(
            actor=actor, action="tenants.migrate", outcome="succeeded", **summary.as_dict()
        )
        return summary

    report.start(plan, parallel=parallel)
    attempted: set[str] = set()
    for _ in range(REPLAN_ROUNDS):
        # Tenants signed up by the previous release's processes while this run went on
        # were made from the old template: plan again until none is left.
        batch = FleetPlan(
            target_state=plan.target_state,
            pending=[tenant for tenant in plan.pending if tenant.id not in attempted],
            up_to_date=plan.up_to_date,
        )
        if not batch.pending:
            break
        report.total = len(attempted) + len(batch.pending)
        attempted.update(tenant.id for tenant in batch.pending)
        for outcome in fleet_migrate(batch, parallel=parallel, on_outcome=report.tenant):
            if outcome.status == "failed":
                summary.failed.append(outcome)
            elif outcome.status == "migrated":
                summary.migrated += 1
            else:
                summary.already_current += 1
        plan = fleet_plan(subdomains=subdomains)
    summary.pending = len(attempted)
    report.tenants_done()

    pooled = 0
    if TEMPLATE.sql() is None:  # new tenants must start on the schema just migrated to
        template_refresh()
        pooled = pool_fill()
        summary.template_refreshed = True
    report.template(summary.template_refreshed, pooled)
    summary.seconds = time.monotonic() - started
    report.summary(summary)
    audit_record(
        actor=actor, action="tenants.migrate", outcome="failed" if summary.failed else "succeeded",
        **summary.as_dict(),
    )  # fmt: skip
    return summary


def tenant_command_run(*, tenant: Any, name: str, args: list[str]) -> dict[str, Any]:
    """Run one manage.py command inside a tenant; capture its output and outcome."""
    import io

    from tenancy import tenant_context

    out, err = io.StringIO(), io.StringIO()
    status, error = "succeeded", ""
    started = time.monotonic()
    try:
        with tenant_context(tenant):
            call_command(name, *args, stdout=out, stderr=err)
    except (SystemExit, Exception) as failure:  # CommandError is an Exception
        # The next tenant still runs; the summary names this one.
        status, error = "failed", f"{type(failure).__name__}: {failure}"
    return {
        "subdomain": tenant.subdomain, "status": status, "output": out.getvalue(),
        "error": (err.getvalue() + ("\n" if err.getvalue() and error else "") + error),
        "ms": round((time.monotonic() - started) * 1000, 1),
    }  # fmt: skip
