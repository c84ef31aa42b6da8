"""Per-tenant usage for Prometheus, bounded: the top METRICS_TENANT_TOP_N tenants only.

A tenant label on every request metric would make one series per tenant per route per
status: the fleet size times everything. Instead each process adds up requests and task
seconds per tenant in memory and, at most every FLUSH_SECONDS, adds them to one Redis
sorted set per kind and window (METRICS_TENANT_WINDOW_SECONDS). A scrape exposes the top
N of the last complete window as `platform_tenant_top_<kind>{tenant="<subdomain>"}`: at
most N series per kind, whatever the fleet's size. Nothing else carries a tenant label.

The worker side: `worker_metrics_serve` starts a private listener in the Celery worker's
main process when METRICS_WORKER_PORT is set (prefork children need
PROMETHEUS_MULTIPROC_DIR to be visible there).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client.core import GaugeMetricFamily, Metric

from core import metrics
from tenancy.context import TenantRef, current_tenant

logger = logging.getLogger(__name__)

REQUESTS = "requests"
TASK_SECONDS = "task_seconds"
KINDS = {
    REQUESTS: "Requests served for the tenant in the last complete window (top N tenants).",
    TASK_SECONDS: "Celery task seconds run for the tenant in the last complete window (top N).",
}
FLUSH_SECONDS = 10.0
# A process that cannot reach Redis stops buffering here rather than grow without end.
MAX_PENDING = 10_000


def _redis() -> Any:
    from django_redis import get_redis_connection  # type: ignore[import-untyped]

    return get_redis_connection("platform")


def usage_key(kind: str, window: int) -> str:
    from django.core.cache import caches

    return f"{caches['platform'].key_prefix}:metrics:tenant-usage:{kind}:{window}"


def window_of(at: float) -> int:
    return int(at // settings.METRICS_TENANT_WINDOW_SECONDS)


class TenantUsage:
    """This process's unflushed per-tenant usage, keyed by (kind, window, subdomain)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int, str], float] = {}
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()

    def add(self, kind: str, subdomain: str, amount: float, *, at: float | None = None) -> None:
        if settings.METRICS_TENANT_TOP_N <= 0:
            return
        key = (kind, window_of(time.time() if at is None else at), subdomain)
        with self._lock:
            if key in self._pending or len(self._pending) < MAX_PENDING:
                self._pending[key] = self._pending.get(key, 0.0) + amount
            due = time.monotonic() - self._flushed_at >= FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Add what this process counted to Redis (one pipeline); on failure, drop it."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed_at = time.monotonic()
        if not pending:
            return
        by_key: dict[str, dict[str, float]] = defaultdict(dict)
        for (kind, window, subdomain), amount in pending.items():
            by_key[usage_key(kind, window)][subdomain] = amount
        ttl = int(settings.METRICS_TENANT_WINDOW_SECONDS * 3)
        try:
            pipe = _redis().pipeline(transaction=False)
            # Four commands per window, not two per tenant: a process that served thousands
            # of tenants in a window would otherwise spend a request's time every flush
            # packing them one by one. The incoming set is this flush's own, and the union
            # adds it to the window's atomically, whichever other process flushes too.
            for key, amounts in by_key.items():
                incoming = f"{key}:incoming:{uuid.uuid4().hex}"
                pipe.zadd(incoming, amounts)
                pipe.zunionstore(key, [key, incoming])
                pipe.delete(incoming)
                pipe.expire(key, ttl)
            pipe.execute()
        except Exception:
            # Usage figures are best effort: never fail a request or task over them.
            logger.warning("tenant usage not recorded", exc_info=True)

    def top(self, kind: str, *, window: int | None = None) -> list[tuple[str, float]]:
        """The top METRICS_TENANT_TOP_N tenants of a window (default: the last complete one)."""
        n = settings.METRICS_TENANT_TOP_N
        if n <= 0:
            return []
        if window is None:
            window = window_of(time.time()) - 1
        rows = _redis().zrevrange(usage_key(kind, window), 0, n - 1, withscores=True)
        return [
            (name.decode() if isinstance(name, bytes) else str(name), score) for name, score in rows
        ]


USAGE = TenantUsage()


def tenant_usage_metrics() -> Iterator[Metric]:
    """Scrape time: at most N labelled series per kind, from Redis."""
    USAGE.flush()
    for kind, documentation in KINDS.items():
        family = GaugeMetricFamily(f"platform_tenant_top_{kind}", documentation, labels=["tenant"])
        for subdomain, score in USAGE.top(kind):
            family.add_metric([subdomain], score)
        yield family


metrics.collector_register("tenant_usage", tenant_usage_metrics)


class TenantUsageMiddleware:
    """Count each request served inside a tenant (below the routing middleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        tenant = current_tenant()
        if tenant is not None:
            USAGE.add(REQUESTS, tenant.subdomain, 1)
        return response


@contextmanager
def tenant_task_timed(tenant: TenantRef) -> Iterator[None]:
    """Add the block's duration to the tenant's task seconds."""
    started = time.monotonic()
    try:
        yield
    finally:
        USAGE.add(TASK_SECONDS, tenant.subdomain, time.monotonic() - started)


# --- the worker's listener -------------------------------------------------------------------


def worker_metrics_serve(**_kwargs: Any) -> None:
    """worker_init: serve the worker's metrics on METRICS_WORKER_PORT (a private listener)."""
    port = settings.METRICS_WORKER_PORT
    if not port:
        return
    from prometheus_client import start_http_server

    start_http_server(
        port,
        addr=settings.METRICS_WORKER_ADDRESS,
        registry=metrics.scrape_registry(with_collectors=False),
    )
    logger.info("worker metrics listening", extra={"port": port})


def worker_process_done(**_kwargs: Any) -> None:
    """worker_process_shutdown: hand over the counts, and retire this child's gauges."""
    USAGE.flush()
    if metrics.multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


def worker_signals_connect() -> None:
    from celery.signals import task_postrun, worker_init, worker_process_shutdown

    worker_init.connect(worker_metrics_serve, dispatch_uid="tenancy-metrics-worker")
    worker_process_shutdown.connect(worker_process_done, dispatch_uid="tenancy-metrics-child")
    # Flush after a task when due (add() checks), so an idle worker's last counts still leave.
    task_postrun.connect(_flush_if_due, dispatch_uid="tenancy-metrics-flush")


def _flush_if_due(**_kwargs: Any) -> None:
    if time.monotonic() - USAGE._flushed_at >= FLUSH_SECONDS:
        USAGE.flush()
