"""The platform's own Prometheus metrics, the scrape-time collectors, and `/metrics` itself.

Every metric here has labels with a fixed, small set of values (a route name, a status, a
task name): never a tenant, a host or an id, so the number of series does not grow with
the fleet. Per-tenant usage is the one exception, and it is bounded: `tenancy.metrics`
exposes at most METRICS_TENANT_TOP_N labelled series.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn's workers, Celery's prefork children) every
process writes its samples to files in that directory and a scrape of any one process
reads them all (prometheus_client's multiprocess mode); docs/observability.md says how.

Apps record through the small functions below (`provisioning_path_count`, ...) rather than
touching the metric objects, so the names and labels stay in one place. Higher layers that
know more (the fleet's tenant counts) register a collector; it runs at scrape time.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric

logger = logging.getLogger(__name__)

# Seconds: from a cache hit to a slow page, and a queue wait of minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUEUE_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
# Stripe retries a delivery for three days.
WEBHOOK_LAG_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, 259200.0)

ROUTE_LOOKUPS = Counter(
    "platform_tenant_route_lookups",
    "Host to tenant lookups by the per-process route cache: hit, or miss (one query).",
    ["result"],
)
PROVISIONING = Counter(
    "platform_provisioning",
    "New tenant schemas by provisioning path: pool (claimed), template (replayed), migrate.",
    ["path"],
)
FLEET_MIGRATE = Counter(
    "platform_fleet_migrate_tenants",
    "Tenants handled by `tenants migrate`, by outcome (migrated, up_to_date, failed).",
    ["outcome"],
)
TASKS_PUBLISHED = Counter(
    "platform_celery_tasks_published", "Celery messages published, by task name.", ["task"]
)
TASKS = Counter(
    "platform_celery_tasks",
    "Celery tasks run, by task name and final state (SUCCESS, FAILURE, RETRY, REJECTED).",
    ["task", "state"],
)
TASK_QUEUE_WAIT = Histogram(
    "platform_celery_task_queue_wait_seconds",
    "Seconds a task waited between publish (or its ETA) and its start in a worker.",
    ["task"],
    buckets=QUEUE_WAIT_BUCKETS,
)
TASK_RUNTIME = Histogram(
    "platform_celery_task_runtime_seconds",
    "Seconds a task ran in the worker.",
    ["task"],
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_LAG = Histogram(
    "platform_stripe_webhook_lag_seconds",
    "Seconds from a Stripe event's creation to its receipt here.",
    buckets=WEBHOOK_LAG_BUCKETS,
)
MAIL_FAILURES = Counter(
    "platform_mail_failures",
    "E-mail delivery failures: inline (no worker), retry (will be retried), given_up.",
    ["stage"],
)
READINESS_CHECK = Gauge(
    "platform_readiness_check_ok",
    "1 when the readiness check passed at the last /readyz, else 0.",
    ["check"],
    multiprocess_mode="livemostrecent",
)
READY = Gauge(
    "platform_ready",
    "1 when the last /readyz answered ready, else 0.",
    multiprocess_mode="livemostrecent",
)
HTTP_RESPONSES = Counter(
    "platform_http_responses",
    "Responses by route (the resolved URL name; `probe:<name>` for the probes, `unrouted` for "
    "answers before URL resolution), method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "platform_http_request_duration_seconds",
    "Seconds from the first middleware to the response, by route and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
COLLECTOR_ERRORS = Counter(
    "platform_metrics_collector_errors",
    "Scrape-time collectors that raised (their series are missing from that scrape).",
    ["collector"],
)

# --- recording, for the apps -------------------------------------------------------------


def route_lookup_count(*, hit: bool) -> None:
    ROUTE_LOOKUPS.labels(result="hit" if hit else "miss").inc()


def provisioning_path_count(path: str) -> None:
    PROVISIONING.labels(path=str(path)).inc()


def fleet_migrate_outcome_count(outcome: str) -> None:
    FLEET_MIGRATE.labels(outcome=outcome).inc()


def stripe_webhook_lag_observe(created: object) -> None:
    """Observe the lag of a Stripe event from its `created` (epoch seconds), if it has one."""
    if isinstance(created, int | float) and not isinstance(created, bool):
        WEBHOOK_LAG.observe(max(0.0, time.time() - float(created)))


def mail_failure_count(stage: str) -> None:
    MAIL_FAILURES.labels(stage=stage).inc()


# --- HTTP: responses by route and status, latency -----------------------------------------

# Methods outside this set are counted as "other": a client must not mint label values.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED = "unrouted"
ROUTE_LABEL_ATTRIBUTE = "metrics_route"

# Labelled children by label values: `labels()` validates and locks on every call, and a
# request is too cheap to pay that twice. The key sets are bounded (routes x methods x codes).
_responses: dict[tuple[str, str, int], Any] = {}
_durations: dict[tuple[str, str], Any] = {}


def request_route(request: HttpRequest) -> str:
    """The route label of a request: its URL name, a probe's name, or `unrouted`."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or UNROUTED
    return getattr(request, ROUTE_LABEL_ATTRIBUTE, UNROUTED)


def http_response_observe(request: HttpRequest, status: int, seconds: float) -> None:
    route = request_route(request)
    method = request.method if request.method in HTTP_METHODS else "other"
    key = (route, method, status)
    counter = _responses.get(key)
    if counter is None:
        counter = _responses[key] = HTTP_RESPONSES.labels(route, method, str(status))
    counter.inc()
    histogram = _durations.get(key[:2])
    if histogram is None:
        histogram = _durations[key[:2]] = HTTP_DURATION.labels(route, method)
    histogram.observe(seconds)


class RequestMetricsMiddleware:
    """Near the top: count and time every response, those of the probes and of routing too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        http_response_observe(request, response.status_code, time.perf_counter() - started)
        return response


# --- Celery: tasks by name and state, queue wait ----------------------------------------

PUBLISHED_AT_HEADER = "published_at"


def _header(task: Any, name: str) -> Any:
    # Depending on the broker, custom headers are merged into the request or kept apart.
    request = getattr(task, "request", None)
    headers = getattr(request, "headers", None) or {}
    return headers.get(name) or getattr(request, name, None)


def celery_publish_stamp(sender: Any = None, headers: Any = None, **_kwargs: Any) -> None:
    """before_task_publish: stamp the message with its publish time (each retry restamps)."""
    if isinstance(headers, dict):
        headers[PUBLISHED_AT_HEADER] = f"{time.time():.6f}"
        TASKS_PUBLISHED.labels(task=str(sender or headers.get("task") or "unknown")).inc()


def celery_task_started(sender: Any = None, task: Any = None, **_kwargs: Any) -> None:
    """task_prerun: observe how long the message waited, from publish or its ETA."""
    task = task or sender
    if task is None:
        return
    task.request._platform_started = time.monotonic()
    stamp = _header(task, PUBLISHED_AT_HEADER)
    try:
        published = float(stamp)
    except (TypeError, ValueError):
        return  # sent by something that is not the platform, or run directly
    eta = getattr(task.request, "eta", None)
    if isinstance(eta, str):
        # A task with an ETA or countdown waits on purpose until then; count from there.
        with contextlib.suppress(ValueError):
            published = max(published, datetime.fromisoformat(eta).timestamp())
    # Clocks of publisher and worker differ a little: a negative wait is no wait.
    TASK_QUEUE_WAIT.labels(task=task.name).observe(max(0.0, time.time() - published))


def celery_task_finished(
    sender: Any = None, task: Any = None, state: str | None = None, **_kwargs: Any
) -> None:
    """task_postrun: count the task by its final state and observe its runtime."""
    task = task or sender
    if task is None:
        return
    TASKS.labels(task=task.name, state=state or "UNKNOWN").inc()
    started = getattr(task.request, "_platform_started", None)
    if isinstance(started, float):
        TASK_RUNTIME.labels(task=task.name).observe(time.monotonic() - started)


def celery_signals_connect() -> None:
    """Hook the Celery metrics into Celery's signals (once per process)."""
    from celery.signals import before_task_publish, task_postrun, task_prerun

    before_task_publish.connect(celery_publish_stamp, dispatch_uid="core-metrics-publish")
    task_prerun.connect(celery_task_started, dispatch_uid="core-metrics-prerun")
    task_postrun.connect(celery_task_finished, dispatch_uid="core-metrics-postrun")


# --- scrape time ---------------------------------------------------------------------------

Collect = Callable[[], Iterable[Metric]]
_collectors: dict[str, Collect] = {}


def collector_register(name: str, collect: Collect) -> None:
    """Add a collector run at every scrape of /metrics (web processes only); keep it cheap."""
    _collectors[name] = collect


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Sources:
    """What one scrape reads: this process's (or every process's) samples, plus collectors."""

    def __init__(self, *, with_collectors: bool) -> None:
        self._with_collectors = with_collectors

    def collect(self) -> Iterator[Metric]:
        if multiprocess_dir():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()
        if not self._with_collectors:
            return
        for name, collect in list(_collectors.items()):
            try:
                yield from list(collect())
            except Exception:
                # One broken collector must not cost the whole scrape.
                logger.exception("metrics collector failed", extra={"collector": name})
                COLLECTOR_ERRORS.labels(collector=name).inc()


def scrape_registry(*, with_collectors: bool = True) -> CollectorRegistry:
    """A registry for one exposition: multiprocess-aware, with the registered collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Sources(with_collectors=with_collectors))
    return registry


def metrics_exposition() -> bytes:
    return generate_latest(scrape_registry())


def bearer_token_valid(request: HttpRequest) -> bool:
    """Whether the request carries `Authorization: Bearer <METRICS_TOKEN>` (never if unset)."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_response(request: HttpRequest) -> HttpResponse:
    """`/metrics`: 404 without a configured token, 401 without credentials, 403 when wrong."""
    if not settings.METRICS_TOKEN:
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    if not request.headers.get("Authorization"):
        response = HttpResponse("Unauthorized.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not bearer_token_valid(request):
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)
