"""/metrics: the token, what requests and tasks move, and no tenant label beyond the top N."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import shared_task
from django.conf import settings
from django.db import connection, connections
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from core import metrics
from shared_apps.tenants.models import Tenant
from tenancy import metrics as tenant_metrics
from tenancy.host_routes import ROUTES
from tenancy.tasks import TENANT_HEADER

TOKEN = "metrics-token-for-the-tests-0123456789"
WELCOME = {"workspace": "Acme Rockets", "url": "http://acme.localhost/", "email": "w@acme.test"}
ROOT = Path(__file__).resolve().parent.parent
# A window so long the test never crosses its end: window 0 is "the last complete one".
LONG_WINDOW = 10**9


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: Client | None = None) -> str:
    client = client or Client(HTTP_HOST="localhost")
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture(autouse=True)
def _token() -> Iterator[None]:
    with override_settings(METRICS_TOKEN=TOKEN):
        yield


@shared_task(name="tests.metrics_probe")
def metrics_probe_task(*, fail: bool = False) -> str:
    if fail:
        raise ValueError("probe failure")
    return "done"


# --- the token --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "alpha.localhost", "nobody.localhost", "10.1.2.3"])
def test_metrics_need_the_token_on_every_host(host: str, tenant_a: Tenant) -> None:
    client = Client(HTTP_HOST=host)
    missing = client.get("/metrics")
    assert (missing.status_code, missing["WWW-Authenticate"]) == (401, 'Bearer realm="metrics"')
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 403
    granted = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert granted.status_code == 200
    assert granted["Content-Type"].startswith("text/plain; version=")


def test_metrics_are_not_found_without_a_configured_token(db: None) -> None:
    with override_settings(METRICS_TOKEN=""):
        client = Client(HTTP_HOST="localhost")
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_a_short_token_stops_start_up() -> None:
    from pydantic import SecretStr, ValidationError

    from config.settings.env import PlatformEnv, describe

    with pytest.raises(ValidationError) as caught:
        PlatformEnv(
            DATABASE_URL="postgresql://x@h/db",
            REDIS_URL="redis://h",
            METRICS_TOKEN=SecretStr("short"),
        )
    assert describe(caught.value) == [
        "METRICS_TOKEN is invalid: expected at least 24 random characters; /metrics answers 404 "
        "without it"
    ]


# --- what a request moves ------------------------------------------------------------------


def test_a_request_counts_by_url_name_and_status(client_a: Client, tenant_a: Tenant) -> None:
    labels = {"route": "workspace:login", "method": "GET", "status": "200"}
    name = "platform_http_responses_total"
    duration = "platform_http_request_duration_seconds_count"
    before = value(name, **labels)
    latency_before = value(duration, route="workspace:login", method="GET")

    assert client_a.get("/login/").status_code == 200

    assert value(name, **labels) == before + 1
    assert value(duration, route="workspace:login", method="GET") == latency_before + 1
    assert "/login/" not in scrape()  # routes by name, never by raw path


def test_probes_and_routing_answers_have_fixed_route_labels(client: Client, db: None) -> None:
    probe = {"route": "probe:healthz", "method": "GET", "status": "200"}
    unrouted = {"route": "unrouted", "method": "GET", "status": "404"}
    name = "platform_http_responses_total"
    probes_before, unrouted_before = value(name, **probe), value(name, **unrouted)

    assert client.get("/healthz", HTTP_HOST="nobody-here.localhost").status_code == 200
    assert client.get("/", HTTP_HOST="nobody-here.localhost").status_code == 404

    assert value(name, **probe) == probes_before + 1
    assert value(name, **unrouted) == unrouted_before + 1
    assert "nobody-here" not in scrape()


def test_a_made_up_method_is_counted_as_other(client_a: Client) -> None:
    labels = {"route": "workspace:login", "method": "other", "status": "405"}
    before = value("platform_http_responses_total", **labels)

    client_a.generic("BREW", "/login/")

    assert value("platform_http_responses_total", **labels) == before + 1
    assert "BREW" not in scrape()


def test_route_cache_hits_and_misses_are_counted(client_a: Client) -> None:
    ROUTES.forget()
    misses = value("platform_tenant_route_lookups_total", result="miss")
    hits = value("platform_tenant_route_lookups_total", result="hit")

    client_a.get("/login/")
    client_a.get("/login/")

    assert value("platform_tenant_route_lookups_total", result="miss") == misses + 1
    assert value("platform_tenant_route_lookups_total", result="hit") == hits + 1


def test_queries_are_counted_through_the_platforms_own_backend(db: None) -> None:
    from django_prometheus.db.common import DatabaseWrapperMixin

    from tenancy.db.base import DatabaseWrapper

    assert isinstance(connections["default"], DatabaseWrapper)
    assert isinstance(connections["default"], DatabaseWrapperMixin)  # django-prometheus, under ours
    with override_settings(TENANT_SCHEMA_RECHECK_SECONDS=3600), connection.cursor() as cursor:
        cursor.execute("SELECT 1")  # warm: the backend may first set the search_path
        before = value("django_db_execute_total", alias="default", vendor="postgresql")
        cursor.execute("SELECT 1")
    assert value("django_db_execute_total", alias="default", vendor="postgresql") == before + 1


def test_cache_reads_are_counted(db: None) -> None:
    from django.core.cache import caches

    before = value("django_cache_get_total", backend="redis")
    misses = value("django_cache_get_misses_total", backend="redis")
    caches["platform"].get("metrics-test:nothing-here")  # (tenant keys read a generation too)
    assert value("django_cache_get_total", backend="redis") == before + 1
    assert value("django_cache_get_misses_total", backend="redis") == misses + 1


# --- what a task moves -----------------------------------------------------------------------


def test_a_task_counts_by_name_and_state_with_its_queue_wait(tenant_a: Tenant) -> None:
    # given a message as the platform publishes it (stamped with its publish time)
    headers: dict[str, Any] = {TENANT_HEADER: str(tenant_a.id)}
    published = value("platform_celery_tasks_published_total", task="tests.metrics_probe")
    metrics.celery_publish_stamp(sender="tests.metrics_probe", headers=headers)
    waits = value("platform_celery_task_queue_wait_seconds_count", task="tests.metrics_probe")
    ok = value("platform_celery_tasks_total", task="tests.metrics_probe", state="SUCCESS")
    failed = value("platform_celery_tasks_total", task="tests.metrics_probe", state="FAILURE")

    # when the worker runs it twice, once failing
    metrics_probe_task.apply(kwargs={}, headers=headers)
    metrics_probe_task.apply(kwargs={"fail": True}, headers=headers)

    # then
    assert float(headers[metrics.PUBLISHED_AT_HEADER]) <= time.time()
    assert (
        value("platform_celery_tasks_published_total", task="tests.metrics_probe") == published + 1
    )
    assert (
        value("platform_celery_task_queue_wait_seconds_count", task="tests.metrics_probe")
        == waits + 2
    )
    assert (
        value("platform_celery_tasks_total", task="tests.metrics_probe", state="SUCCESS") == ok + 1
    )
    assert (
        value("platform_celery_tasks_total", task="tests.metrics_probe", state="FAILURE")
        == failed + 1
    )
    pending = tenant_metrics.USAGE._pending
    assert any(key[0] == "task_seconds" and key[2] == "alpha" for key in pending)


def test_a_task_sent_by_something_else_has_no_wait_to_observe(tenant_a: Tenant) -> None:
    waits = value("platform_celery_task_queue_wait_seconds_count", task="tests.metrics_probe")
    metrics_probe_task.apply(kwargs={}, headers={TENANT_HEADER: str(tenant_a.id)})
    assert (
        value("platform_celery_task_queue_wait_seconds_count", task="tests.metrics_probe") == waits
    )


# --- app hooks -------------------------------------------------------------------------------


def test_webhook_lag_is_observed_from_the_events_creation() -> None:
    count = value("platform_stripe_webhook_lag_seconds_count")
    within_a_minute = value("platform_stripe_webhook_lag_seconds_bucket", le="60.0")
    within_five = value("platform_stripe_webhook_lag_seconds_bucket", le="300.0")

    metrics.stripe_webhook_lag_observe(int(time.time()) - 120)
    metrics.stripe_webhook_lag_observe("not a time")

    assert value("platform_stripe_webhook_lag_seconds_count") == count + 1
    assert value("platform_stripe_webhook_lag_seconds_bucket", le="60.0") == within_a_minute
    assert value("platform_stripe_webhook_lag_seconds_bucket", le="300.0") == within_five + 1


def test_mail_failures_are_counted(db: None, django_capture_on_commit_callbacks: Any) -> None:
    from shared_apps.mail.services import mail_send

    before = value("platform_mail_failures_total", stage="inline")
    with (
        override_settings(EMAIL_BACKEND="tests.mail_backends.ServerDownBackend"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        mail_send(to=["w@acme.test"], template="signup/mail/welcome", context=WELCOME)
    assert value("platform_mail_failures_total", stage="inline") == before + 1


def test_signups_count_their_provisioning_path(db: None, provisioning_template: None) -> None:
    from shared_apps.fleet.creation import tenant_create

    before = value("platform_provisioning_total", path="template")
    tenant_create(
        name="Metrics Inc",
        subdomain="metricsinc",
        owner_email="o@metrics.test",
        owner_password="x-Password-123",
    )
    assert value("platform_provisioning_total", path="template") == before + 1


def test_fleet_gauges_come_from_the_database_at_scrape_time(tenant_a: Tenant) -> None:
    text = scrape()
    active = Tenant.objects.filter(status=Tenant.Status.ACTIVE).count()
    assert f'platform_tenants{{status="active"}} {float(active)}' in text
    assert 'platform_tenant_migrations{state="failed"}' in text
    assert f"platform_tenant_pool_target {float(settings.TENANT_POOL_SIZE)}" in text
    assert "platform_tenant_pool_schemas " in text


def test_readyz_sets_the_readiness_gauges(tenant_a: Tenant) -> None:
    Client(HTTP_HOST="localhost").get("/readyz")
    assert value("platform_ready") == 1.0
    assert value("platform_readiness_check_ok", check="database") == 1.0


# --- no tenant label beyond the top N --------------------------------------------------------


@pytest.fixture
def usage_window() -> Iterator[None]:
    redis = tenant_metrics._redis()
    with override_settings(METRICS_TENANT_WINDOW_SECONDS=LONG_WINDOW, METRICS_TENANT_TOP_N=3):
        keys = [tenant_metrics.usage_key(kind, 0) for kind in tenant_metrics.KINDS]
        redis.delete(*keys)
        yield
        redis.delete(*keys)


@pytest.mark.usefixtures("usage_window")
def test_only_the_top_n_tenants_get_a_labelled_series(owner_a: Client) -> None:
    # given five tenants' usage in the last complete window
    for rank, subdomain in enumerate(["t1", "t2", "t3", "t4", "t5"], start=1):
        tenant_metrics.USAGE.add("requests", subdomain, 100 * rank, at=1.0)
        tenant_metrics.USAGE.add("task_seconds", subdomain, 1.5 * rank, at=1.0)
    owner_a.get("/")  # and a request in a tenant now (the current window)

    text = scrape(owner_a)

    labelled = [
        line for line in text.splitlines() if 'tenant="' in line and not line.startswith("#")
    ]
    assert labelled == [
        'platform_tenant_top_requests{tenant="t5"} 500.0',
        'platform_tenant_top_requests{tenant="t4"} 400.0',
        'platform_tenant_top_requests{tenant="t3"} 300.0',
        'platform_tenant_top_task_seconds{tenant="t5"} 7.5',
        'platform_tenant_top_task_seconds{tenant="t4"} 6.0',
        'platform_tenant_top_task_seconds{tenant="t3"} 4.5',
    ]
    # No other series names a tenant, its host or its schema.
    others = "\n".join(line for line in text.splitlines() if "platform_tenant_top_" not in line)
    for marker in ('="alpha"', "alpha.localhost", "localhost"):
        assert marker not in others
    assert re.search(r"t_[0-9a-f]{32}", others) is None


def test_requests_in_a_tenant_are_added_to_its_usage(client_a: Client, tenant_a: Tenant) -> None:
    tenant_metrics.USAGE.flush()
    client_a.get("/login/")
    client_a.get("/login/")
    window = tenant_metrics.window_of(time.time())
    assert tenant_metrics.USAGE._pending[("requests", window, "alpha")] == 2.0


@pytest.mark.usefixtures("usage_window")
def test_usage_of_many_tenants_from_several_processes_adds_up_in_a_few_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redis = tenant_metrics._redis()
    pipelines: list[int] = []
    real_pipeline = redis.pipeline

    def counted_pipeline(**kwargs: Any) -> Any:
        pipe = real_pipeline(**kwargs)
        real_execute = pipe.execute

        def execute() -> Any:
            pipelines.append(len(pipe.command_stack))
            return real_execute()

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(redis, "pipeline", counted_pipeline)
    monkeypatch.setattr(tenant_metrics, "_redis", lambda: redis)
    # given two processes that served 2,000 tenants, half of them in both
    first, second = tenant_metrics.TenantUsage(), tenant_metrics.TenantUsage()
    for n in range(1500):
        first.add("requests", f"t{n}", 2, at=1.0)
    for n in range(500, 2000):
        second.add("requests", f"t{n}", 3, at=1.0)
    second.add("task_seconds", "t0", 0.5, at=1.0)

    first.flush()
    second.flush()

    # each flush: four commands per window and kind, whatever the number of tenants
    assert pipelines == [4, 8]
    key = tenant_metrics.usage_key("requests", 0)
    scores = dict(redis.zrange(key, 0, -1, withscores=True))
    assert len(scores) == 2000
    assert (scores[b"t0"], scores[b"t700"], scores[b"t1999"]) == (2.0, 5.0, 3.0)
    assert redis.zscore(tenant_metrics.usage_key("task_seconds", 0), "t0") == 0.5
    assert redis.keys(f"{key}:incoming:*") == []  # nothing left behind
    assert 0 < redis.ttl(key) <= LONG_WINDOW * 3


def test_usage_is_off_with_top_n_zero(client_a: Client) -> None:
    tenant_metrics.USAGE.flush()
    with override_settings(METRICS_TENANT_TOP_N=0):
        client_a.get("/login/")
        assert tenant_metrics.USAGE._pending == {}
        assert "platform_tenant_top_requests{" not in scrape()


# --- several processes -----------------------------------------------------------------------


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}",
    }
    count = "from core import metrics; metrics.provisioning_path_count('pool')"
    for _ in range(2):  # two gunicorn workers, say
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    show = (
        "from prometheus_client import generate_latest; from core import metrics; "
        "print(generate_latest(metrics.scrape_registry(with_collectors=False)).decode())"
    )
    shown = subprocess.run(
        [sys.executable, "-c", show],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert re.search(r'^platform_provisioning_total\{path="pool"\} 2\.0$', shown, re.MULTILINE)
