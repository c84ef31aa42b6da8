"""`tenants migrate` from end to end: public schema, tenants, provisioning template, report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.metrics import fleet_migrate_outcome_count
from shared_apps.audit.services import audited
from shared_apps.fleet.errors import OperationFailedError
from shared_apps.fleet.migrate.compiler import SchemaMigrator
from shared_apps.fleet.migrate.ledger import FleetPlan, TenantOutcome, fleet_plan
from shared_apps.fleet.migrate.report import MigrationReport
from shared_apps.fleet.migrate.workers import fleet_plan_migrate
from shared_apps.fleet.provisioning import (
    TEMPLATE,
    pool_fill,
    template_catalog_missing,
    template_refresh,
)
from shared_apps.fleet.verify import fleet_verify
from shared_apps.tenants.errors import TenantNotFoundError, TenantStateInvalidError
from shared_apps.tenants.models import Tenant
from tenancy import public_context

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
    quarantined: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "public_migrations": self.public_migrations,
            "pending": self.pending,
            "skipped_up_to_date": self.up_to_date,
            "migrated": self.migrated,
            "already_current": self.already_current,
            "failed": [{"subdomain": o.subdomain, "error": o.error} for o in self.failed],
            "template_refreshed": self.template_refreshed,
            "quarantined": self.quarantined,
            "released": self.released,
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
        }


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


def fleet_migrate(
    report: MigrationReport, *, subdomains: list[str], parallel: int, dry_run: bool, actor: str
) -> MigrationSummary:
    """Migrate the public schema, then the pending tenants, then the provisioning template,
    then check the (selected) tenants' schemas against it: broken ones are quarantined, and
    quarantined ones found whole are released (audited, with the run's summary).

    A quarantined tenant does not fail the run (the migrations did not fail; the release
    must go on for the others): the summary names it, and `tenants verify` exits 1.

    Raises:
        TenantNotFoundError: a named tenant does not exist (nothing ran).
        TenantStateInvalidError: a named tenant is archived (nothing ran).
        OperationFailedError: some tenants failed to migrate; the others are migrated.
    """
    # Not atomic: every tenant migrates in a transaction of its own.
    with audited("tenants.migrate", actor=actor, atomic=False) as entry:
        wanted = _subdomains_checked(subdomains)
        summary = _migrate(
            report, subdomains=wanted, parallel=parallel, dry_run=dry_run, actor=actor
        )
        entry.detail.update(summary.as_dict())
        if summary.failed:
            names = ", ".join(outcome.subdomain for outcome in summary.failed)
            raise OperationFailedError(
                f"{len(summary.failed)} tenant(s) failed to migrate: {names}. "
                "The others are migrated; fix the cause and run `tenants migrate` again."
            )
    return summary


def _subdomains_checked(subdomains: list[str]) -> list[str]:
    """Refuse unknown or archived names up front, before anything runs."""
    wanted = sorted({subdomain.strip().lower() for subdomain in subdomains})
    found = dict(Tenant.objects.filter(subdomain__in=wanted).values_list("subdomain", "status"))
    unknown = [subdomain for subdomain in wanted if subdomain not in found]
    if unknown:
        raise TenantNotFoundError(f"no tenant with subdomain {', '.join(map(repr, unknown))}")
    archived = [subdomain for subdomain in wanted if found[subdomain] == Tenant.Status.ARCHIVED]
    if archived:
        raise TenantStateInvalidError(
            f"{', '.join(map(repr, archived))} archived; `tenants restore` migrates it"
        )
    return wanted


def _migrate(
    report: MigrationReport, *, subdomains: list[str], parallel: int, dry_run: bool, actor: str
) -> MigrationSummary:
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
        public_migrations=public,
        pending=len(plan.pending),
        up_to_date=plan.up_to_date,
        dry_run=dry_run,
    )
    if dry_run:
        migrator = SchemaMigrator(target_state=plan.target_state)
        for tenant in plan.pending:
            report.pending(tenant.subdomain, migrator.pending_migrations(tenant))
        summary.seconds = time.monotonic() - started
        report.summary(summary)
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
        for outcome in fleet_plan_migrate(batch, parallel=parallel, on_outcome=report.tenant):
            fleet_migrate_outcome_count(outcome.status)
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
    # New tenants must start on the schema just migrated to, and verifying needs the
    # template's catalog (a template built before catalogs were kept has none).
    if TEMPLATE.sql() is None or template_catalog_missing():
        template_refresh()
        pooled = pool_fill()
        summary.template_refreshed = True
    report.template(summary.template_refreshed, pooled)

    verification = fleet_verify(actor=actor, subdomains=subdomains)
    summary.quarantined = verification.still_quarantined
    summary.released = verification.released
    report.verify(verification)
    summary.seconds = time.monotonic() - started
    report.summary(summary)
    return summary
