"""What `tenants migrate` shows: a progress bar with an ETA for people, JSON lines for machines."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from django.core.management.base import OutputWrapper

from shared_apps.fleet.migrate.ledger import FleetPlan, TenantOutcome

if TYPE_CHECKING:
    from shared_apps.fleet.migrate.run import MigrationSummary
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

    def start(self, plan: FleetPlan, *, parallel: int) -> None:
        self.total = len(plan.pending)
        self.started = time.monotonic()
        if self.json_lines:
            self._line(
                "start",
                pending=self.total,
                skipped_up_to_date=plan.up_to_date,
                parallel=parallel,
            )
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
            + (f", {len(summary.quarantined)} quarantined" if summary.quarantined else "")
        )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}:{secs:02d}"
