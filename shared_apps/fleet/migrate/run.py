"""`tenants migrate` from end to end: public schema, tenants, provisioning template, report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Q

from core.metrics import fleet_migrate_outcome_count
from shared_apps.audit.services import audited
from shared_apps.fleet.errors import OperationFailedError
from shared_apps.fleet.migrate.compiler import SchemaMigrator
from shared_apps.fleet.migrate.ledger import (
    TenantOutcome,
    TenantTarget,
    fleet_plan,
    tenant_migrations_mark_held,
)
from shared_apps.fleet.migrate.report import MigrationReport
from shared_apps.fleet.migrate.waves import RolloutPolicy, Wave, WaveKind, WaveResult
from shared_apps.fleet.migrate.workers import MigrationWorkers
from shared_apps.fleet.provisioning import (
    TEMPLATE,
    pool_fill,
    template_catalog_missing,
    template_refresh,
)
from shared_apps.fleet.quarantine import tenant_quarantine, tenant_release
from shared_apps.fleet.verify import FleetVerification, fleet_verify
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
    policy: RolloutPolicy = field(default_factory=RolloutPolicy)
    waves: list[WaveResult] = field(default_factory=list)
    stopped_after_wave: int | None = None  # a staged run that started no further wave
    held: int = 0  # tenants of the waves not started: untouched, pending
    maintenance_started: list[str] = field(default_factory=list)
    maintenance_ended: list[str] = field(default_factory=list)

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
            "rollout": self.policy.as_dict(),
            "waves": [wave.as_dict() for wave in self.waves],
            "stopped_after_wave": self.stopped_after_wave,
            "held": self.held,
            "maintenance_started": self.maintenance_started,
            "maintenance_ended": self.maintenance_ended,
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
    report: MigrationReport,
    *,
    subdomains: list[str],
    parallel: int,
    dry_run: bool,
    actor: str,
    policy: RolloutPolicy | None = None,
) -> MigrationSummary:
    """Migrate the public schema, then the pending tenants in waves (`policy`), then the
    provisioning template, then check the (selected) tenants' schemas against it: broken
    ones are quarantined, and quarantined ones found whole are released (audited, with the
    run's summary).

    A tenant whose migration fails is put in maintenance (its hosts answer 503 with
    Retry-After, its tasks are skipped) until a later run migrates it. A staged run whose
    failures pass `policy.max_failures` starts no further wave: the tenants left are held,
    untouched, and the provisioning template stays at the previous release.

    A quarantined tenant does not fail the run (the migrations did not fail; the release
    must go on for the others): the summary names it, and `tenants verify` exits 1.

    Raises:
        TenantNotFoundError: a named tenant does not exist (nothing ran).
        TenantStateInvalidError: a named tenant is archived (nothing ran).
        OperationFailedError: some tenants failed to migrate (the others are migrated, or
            held when the rollout stopped).
    """
    policy = policy or RolloutPolicy()
    # Not atomic: every tenant migrates in a transaction of its own.
    with audited("tenants.migrate", actor=actor, atomic=False) as entry:
        wanted = _subdomains_checked(subdomains)
        summary = _migrate(
            report,
            subdomains=wanted,
            parallel=parallel,
            dry_run=dry_run,
            actor=actor,
            policy=policy,
        )
        entry.detail.update(summary.as_dict())
        if summary.failed:
            raise OperationFailedError(_failure_message(summary))
    return summary


def _failure_message(summary: MigrationSummary) -> str:
    names = ", ".join(outcome.subdomain for outcome in summary.failed)
    failed = f"{len(summary.failed)} tenant(s) failed to migrate and are in maintenance: {names}."
    if summary.stopped_after_wave is not None:
        return (
            f"{failed} The rollout stopped after wave {summary.stopped_after_wave} (more than "
            f"{summary.policy.max_failures} failure(s)); {summary.held} tenant(s) were not "
            "tried and keep the previous release's schema. Fix the cause and run "
            "`tenants migrate` again."
        )
    return f"{failed} The others are migrated; fix the cause and run `tenants migrate` again."


def _migrate_in_waves(
    report: MigrationReport,
    summary: MigrationSummary,
    pending: list[TenantTarget],
    subdomains: list[str],
    parallel: int,
    actor: str,
) -> set[str]:
    """Migrate the pending tenants wave by wave; return the ids of those tried."""
    policy = summary.policy
    queue = policy.waves(pending)
    attempted: set[str] = set()
    late_rounds = 0
    with MigrationWorkers(target_state=TEMPLATE.expected_state(), parallel=parallel) as workers:
        while queue:
            wave = queue.pop(0)
            attempted.update(tenant.id for tenant in wave.tenants)
            report.wave(wave, waves=wave.number + len(queue))
            result = _wave_run(workers, wave, summary, report, actor)
            summary.waves.append(result)
            report.wave_done(result, failures=len(summary.failed))
            if queue and policy.stops_after(len(summary.failed)):
                held = [tenant for later in queue for tenant in later.tenants]
                tenant_migrations_mark_held([tenant.id for tenant in held])
                summary.stopped_after_wave, summary.held = wave.number, len(held)
                report.stopped(summary)
                break
            if not queue and late_rounds < REPLAN_ROUNDS - 1:
                # Tenants signed up by the previous release's processes while this run went
                # on were made from the old template: plan again until none is left.
                late_rounds += 1
                late = [
                    tenant
                    for tenant in fleet_plan(subdomains=subdomains).pending
                    if tenant.id not in attempted
                ]
                if late:
                    report.total += len(late)
                    queue.append(Wave(number=wave.number + 1, kind=WaveKind.LATE, tenants=late))
    return attempted


def _wave_run(
    workers: MigrationWorkers,
    wave: Wave,
    summary: MigrationSummary,
    report: MigrationReport,
    actor: str,
) -> WaveResult:
    result = WaveResult(number=wave.number, kind=wave.kind, tenants=len(wave.tenants))
    targets = {tenant.id: tenant for tenant in wave.tenants}

    def seen(outcome: TenantOutcome) -> None:
        outcome.wave = wave.number
        _outcome_record(summary, result, outcome, targets[outcome.tenant_id], actor)
        report.tenant(outcome)

    workers.migrate(wave.tenants, on_outcome=seen)
    return result


def _outcome_record(
    summary: MigrationSummary,
    result: WaveResult,
    outcome: TenantOutcome,
    target: TenantTarget,
    actor: str,
) -> None:
    """Count one tenant's outcome; a failure puts it in maintenance, a success lifts it."""
    fleet_migrate_outcome_count(outcome.status)
    maintenance = Tenant.QuarantineCause.MIGRATION_FAILED
    if outcome.status == "failed":
        summary.failed.append(outcome)
        result.failed.append(outcome.subdomain)
        if tenant_quarantine(
            tenant=target.ref(),
            cause=maintenance,
            reason=f"migration failed: {outcome.error}",
            actor=actor,
            wave=outcome.wave,
        ):
            outcome.maintenance = "started"
            summary.maintenance_started.append(outcome.subdomain)
        return
    if outcome.status == "migrated":
        summary.migrated += 1
        result.migrated += 1
    else:
        summary.already_current += 1
        result.already_current += 1
    if target.in_maintenance and tenant_release(
        tenant=target.ref(), actor=actor, cause=maintenance
    ):
        outcome.maintenance = "ended"
        summary.maintenance_ended.append(outcome.subdomain)


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
    report: MigrationReport,
    *,
    subdomains: list[str],
    parallel: int,
    dry_run: bool,
    actor: str,
    policy: RolloutPolicy,
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
        policy=policy,
    )
    if dry_run:
        migrator = SchemaMigrator(target_state=plan.target_state)
        for tenant in plan.pending:
            report.pending(tenant.subdomain, migrator.pending_migrations(tenant))
        summary.seconds = time.monotonic() - started
        report.summary(summary)
        return summary

    report.start(plan, parallel=parallel, policy=policy)
    attempted = _migrate_in_waves(report, summary, plan.pending, subdomains, parallel, actor)
    summary.pending = len(attempted)
    report.tenants_done()

    pooled = 0
    # New tenants must start on the schema just migrated to, and verifying needs the
    # template's catalog (a template built before catalogs were kept has none). A stopped
    # rollout keeps the previous release's template: that release still serves (the
    # release step failed), and its processes provision from the template they match.
    stale = TEMPLATE.sql() is None and summary.stopped_after_wave is None
    if stale or template_catalog_missing():
        template_refresh()
        pooled = pool_fill()
        summary.template_refreshed = True
    report.template(summary.template_refreshed, pooled)

    verification = _verify_what_changed(attempted, subdomains, actor=actor)
    summary.quarantined = verification.still_quarantined
    summary.released = verification.released
    report.verify(verification)
    summary.seconds = time.monotonic() - started
    report.summary(summary)
    return summary


def _verify_what_changed(
    attempted: set[str], subdomains: list[str], *, actor: str
) -> FleetVerification:
    """Check the schemas this run migrated, and the quarantined ones (a run may be what
    makes them whole again), among the selected tenants.

    The rest of the fleet is `tenants verify`'s and its scheduled task's: reading every
    schema's catalog takes about a minute at 10,000 tenants, and would be most of a run
    that has nothing to do.
    """
    with public_context():
        tenants = Tenant.objects.filter(Q(id__in=attempted) | Q(quarantined_at__isnull=False))
        if subdomains:
            tenants = tenants.filter(subdomain__in=[name.lower() for name in subdomains])
        to_check = sorted(tenants.values_list("subdomain", flat=True))
    if not to_check:
        return FleetVerification.nothing_checked(template_state=TEMPLATE.expected_state())
    return fleet_verify(actor=actor, subdomains=to_check)
