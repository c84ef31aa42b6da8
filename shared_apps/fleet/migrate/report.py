"""What `tenants migrate` shows: a progress bar with an ETA for people, JSON lines for machines."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from django.core.management.base import OutputWrapper

from shared_apps.fleet.migrate.ledger import FleetPlan, TenantOutcome

if TYPE_CHECKING:
    from shared_apps.fleet.migrate.run import MigrationSummary
    from shared_apps.fleet.migrate.waves import RolloutPolicy, Wave, WaveResult
    from shared_apps.fleet.verify import FleetVerification

BAR_WIDTH = 30


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

    def start(self, plan: FleetPlan, *, parallel: int, policy: RolloutPolicy | None = None) -> None:
        self.total = len(plan.pending)
        self.started = time.monotonic()
        staged = policy is not None and policy.is_staged
        if self.json_lines:
            self._line(
                "start",
                pending=self.total,
                skipped_up_to_date=plan.up_to_date,
                parallel=parallel,
                **({"rollout": policy.as_dict()} if policy is not None else {}),
            )
            return
        self.out.write(
            f"tenants: {self.total} to check, {plan.up_to_date} up to date (skipped); "
            f"{parallel} worker(s)"
        )
        if staged:
            assert policy is not None
            size = policy.wave_size or "the rest"
            self.out.write(
                f"rollout: {policy.canary} canary tenant(s), then waves of {size}; stops "
                f"when more than {policy.max_failures} fail"
            )

    def wave(self, wave: Wave, *, waves: int) -> None:
        if self.json_lines:
            self._line("wave", wave=wave.number, kind=wave.kind, tenants=len(wave.tenants))
            return
        if waves > 1 or wave.kind != "wave":
            self.out.write(
                f"\r\033[K  wave {wave.number}/{waves} ({wave.kind}): {len(wave.tenants)} tenant(s)"
            )

    def wave_done(self, result: WaveResult, *, failures: int) -> None:
        if self.json_lines:
            self._line("wave_done", **result.as_dict(), failures_so_far=failures)

    def stopped(self, summary: MigrationSummary) -> None:
        if self.json_lines:
            self._line(
                "stopped",
                after_wave=summary.stopped_after_wave,
                failures=len(summary.failed),
                max_failures=summary.policy.max_failures,
                held=summary.held,
            )
            return
        self.out.write(
            f"\r\033[K  STOPPED after wave {summary.stopped_after_wave}: "
            f"{len(summary.failed)} failure(s), more than {summary.policy.max_failures}; "
            f"{summary.held} tenant(s) held (not tried)"
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
            if outcome.maintenance == "started":
                self.out.write(f"  {outcome.subdomain} is in maintenance until a run migrates it")
        elif outcome.maintenance == "ended":
            self.out.write(f"\r\033[K  {outcome.subdomain} migrated; maintenance ended")
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

    def verify(self, verification: FleetVerification) -> None:
        if self.json_lines:
            self._line("verify", **verification.as_dict())
            return
        for tenant in verification.findings:
            if tenant.subdomain in verification.still_quarantined:
                reason = tenant.reason() or "not at the template's migrations yet"
                self.out.write(f"  QUARANTINED {tenant.subdomain}: {reason}")
        for subdomain in verification.released:
            self.out.write(f"  released {subdomain}: its schema is whole again")

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
            + (f", {summary.held} held" if summary.stopped_after_wave is not None else "")
            + (f", {len(summary.quarantined)} quarantined" if summary.quarantined else "")
            + (f" in {len(summary.waves)} wave(s)" if summary.policy.is_staged else "")
        )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}:{secs:02d}"
