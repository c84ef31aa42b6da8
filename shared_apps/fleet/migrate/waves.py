"""Rollouts in waves: a few canary tenants first, then waves, stopped when too many fail.

A release that breaks on some tenant's data should break on a handful of tenants, not on
the fleet. The pending tenants (oldest first, see `ledger.fleet_plan`) are cut into a
canary wave of `canary` tenants and then waves of `wave_size`; after each wave, a run
whose failures so far exceed `max_failures` starts no further wave. Tenants of the waves
not started are held: untouched, on the previous release's schema, pending for the next
run. Without `canary` and `wave_size` the run is one wave and never stops early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared_apps.fleet.migrate.ledger import TenantTarget


class WaveKind:
    CANARY = "canary"
    WAVE = "wave"
    # Tenants signed up by the previous release's processes while the run went on.
    LATE = "late"


@dataclass(frozen=True)
class RolloutPolicy:
    canary: int = 0
    wave_size: int = 0  # 0: every tenant after the canaries in one wave
    max_failures: int = 0  # a staged run stops once more than this many failed

    @property
    def is_staged(self) -> bool:
        return self.canary > 0 or self.wave_size > 0

    def waves(self, tenants: list[TenantTarget]) -> list[Wave]:
        """Cut the pending tenants, in order, into the canary wave and the waves after it."""
        if not self.is_staged:
            return [Wave(number=1, kind=WaveKind.WAVE, tenants=tenants)] if tenants else []
        cuts: list[tuple[str, list[TenantTarget]]] = []
        rest = tenants
        if self.canary:
            cuts.append((WaveKind.CANARY, rest[: self.canary]))
            rest = rest[self.canary :]
        size = self.wave_size or max(len(rest), 1)
        cuts.extend(
            (WaveKind.WAVE, rest[start : start + size]) for start in range(0, len(rest), size)
        )
        return [
            Wave(number=number, kind=kind, tenants=chunk)
            for number, (kind, chunk) in enumerate((cut for cut in cuts if cut[1]), 1)
        ]

    def stops_after(self, failures: int) -> bool:
        """Whether a staged run with this many failures so far starts no further wave."""
        return self.is_staged and failures > self.max_failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "canary": self.canary,
            "wave_size": self.wave_size,
            "max_failures": self.max_failures if self.is_staged else None,
        }


@dataclass(frozen=True)
class Wave:
    number: int  # from 1; the canary wave is the first when there is one
    kind: str
    tenants: list[TenantTarget]


@dataclass
class WaveResult:
    number: int
    kind: str
    tenants: int
    migrated: int = 0
    already_current: int = 0
    failed: list[str] = field(default_factory=list)  # subdomains

    def as_dict(self) -> dict[str, Any]:
        return {
            "wave": self.number,
            "kind": self.kind,
            "tenants": self.tenants,
            "migrated": self.migrated,
            "already_current": self.already_current,
            "failed": self.failed,
        }
