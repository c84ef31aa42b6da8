"""The worker pool of `tenants migrate`: tenants handed out in chunks to forked processes.

Each worker loads the migration graph once and dies with the run: a killed run leaves no
worker mid-way (its open transaction rolls back).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from django.db import connections

from shared_apps.fleet.migrate.compiler import SchemaMigrator
from shared_apps.fleet.migrate.ledger import FleetPlan, TenantOutcome, TenantTarget, one_line

# Tenants handed to a worker process at a time: small enough to balance the load and keep
# the progress moving, large enough that the hand-over costs nothing.
CHUNK_SIZE = 16

_WORKER: SchemaMigrator | None = None


def _worker_start(target_state: str) -> None:
    """Start a worker process: die with the parent (a killed run leaves no orphan mid-way:
    its open transaction rolls back), and load the migration graph once."""
    global _WORKER
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    for alias in connections:
        connections[alias].connection = None  # never the parent's socket
    _WORKER = SchemaMigrator(target_state=target_state)


def _worker_migrate(chunk: list[TenantTarget]) -> list[TenantOutcome]:
    assert _WORKER is not None
    return [_WORKER.migrate(tenant) for tenant in chunk]


def _chunks(tenants: list[TenantTarget], size: int) -> Iterator[list[TenantTarget]]:
    for start in range(0, len(tenants), size):
        yield tenants[start : start + size]


def fleet_plan_migrate(
    plan: FleetPlan, *, parallel: int, on_outcome: Callable[[TenantOutcome], None]
) -> list[TenantOutcome]:
    """Migrate the plan's pending tenants over `parallel` processes; report each outcome."""
    outcomes: list[TenantOutcome] = []

    def report(outcome: TenantOutcome) -> None:
        outcomes.append(outcome)
        on_outcome(outcome)

    if parallel <= 1 or len(plan.pending) <= 1:
        migrator = SchemaMigrator(target_state=plan.target_state)
        for tenant in plan.pending:
            report(migrator.migrate(tenant))
        return outcomes

    connections.close_all()  # the workers are forked: none may inherit an open socket
    chunk_size = max(1, min(CHUNK_SIZE, len(plan.pending) // (parallel * 4) or 1))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=parallel,
        mp_context=context,
        initializer=_worker_start,
        initargs=(plan.target_state,),
    ) as pool:
        futures = {
            pool.submit(_worker_migrate, chunk): chunk
            for chunk in _chunks(plan.pending, chunk_size)
        }
        for future in as_completed(futures):
            try:
                for outcome in future.result():
                    report(outcome)
            except Exception as error:
                # A worker that died breaks the pool: every chunk not yet reported ends up
                # here. Each of its tenants either committed or is untouched; the next run
                # finds out which with its one query.
                for tenant in futures[future]:
                    report(
                        TenantOutcome(
                            subdomain=tenant.subdomain,
                            tenant_id=tenant.id,
                            status="failed",
                            error=f"outcome unknown, a worker process died: {one_line(error)}",
                        )
                    )
    return outcomes
