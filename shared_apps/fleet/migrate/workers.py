"""The worker pool of `tenants migrate`: tenants handed out in chunks to forked processes.

The pool is forked once per run and serves every wave. Each worker loads the migration
graph once and dies with the run: a killed run leaves no worker mid-way (its open
transaction rolls back).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from django.db import connections

from shared_apps.fleet.migrate.compiler import SchemaMigrator
from shared_apps.fleet.migrate.ledger import TenantOutcome, TenantTarget, one_line

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


class MigrationWorkers:
    """The worker processes of one run, forked once and used for every wave.

    A wave of one tenant, or `parallel` 1, runs in this process instead (no fork).
    """

    def __init__(self, *, target_state: str, parallel: int) -> None:
        self.target_state = target_state
        self.parallel = parallel
        self._pool: ProcessPoolExecutor | None = None
        self._local: SchemaMigrator | None = None
        self._broken = False

    def __enter__(self) -> MigrationWorkers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool_close()

    def migrate(
        self, tenants: list[TenantTarget], *, on_outcome: Callable[[TenantOutcome], None]
    ) -> list[TenantOutcome]:
        """Migrate these tenants; report each outcome as it comes."""
        outcomes: list[TenantOutcome] = []

        def report(outcome: TenantOutcome) -> None:
            outcomes.append(outcome)
            on_outcome(outcome)

        if self.parallel <= 1 or len(tenants) <= 1:
            if self._local is None:
                self._local = SchemaMigrator(target_state=self.target_state)
            for tenant in tenants:
                report(self._local.migrate(tenant))
            return outcomes

        pool = self._pool_open()
        chunk_size = max(1, min(CHUNK_SIZE, len(tenants) // (self.parallel * 4) or 1))
        futures = {
            pool.submit(_worker_migrate, chunk): chunk for chunk in _chunks(tenants, chunk_size)
        }
        for future in as_completed(futures):
            try:
                for outcome in future.result():
                    report(outcome)
            except Exception as error:
                # A worker that died breaks the pool: every chunk not yet reported ends up
                # here. Each of its tenants either committed or is untouched; the next run
                # finds out which with its one query. The next wave gets a new pool.
                self._broken = True
                for tenant in futures[future]:
                    report(
                        TenantOutcome(
                            subdomain=tenant.subdomain,
                            tenant_id=tenant.id,
                            status="failed",
                            error=f"outcome unknown, a worker process died: {one_line(error)}",
                        )
                    )
        if self._broken:
            self._pool_close()
            self._broken = False
        return outcomes

    def _pool_open(self) -> ProcessPoolExecutor:
        if self._pool is None:
            connections.close_all()  # the workers are forked: none may inherit an open socket
            self._pool = ProcessPoolExecutor(
                max_workers=self.parallel,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_worker_start,
                initargs=(self.target_state,),
            )
        return self._pool

    def _pool_close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
