"""Error reports and traces name the tenant, the request and the user by id, and nothing
personal; a request and the task it queues share one trace."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from django.db import connections
from django.test import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tests.celery_probe  # noqa: F401  (registers the probe tasks in this process too)
from config.celery import app
from core.error_reports import event_prepare, sentry_init
from core.logging import JsonLineFormatter, RequestLogFilter
from core.request_context import request_id_context
from core.telemetry import EMAIL, EMAIL_MASK
from core.tracing import tracing_init, uninstrument
from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import TenantRef, tenant_context
from tenancy.logging import TenantLogFilter
from tests.factories import ProjectFactory
from tests.fixtures import TENANT_A
from tests.infra import wait_for
from tests.telemetry_receivers import OtlpReceiver, SentrySink


def _record(message: str) -> logging.LogRecord:
    record = logging.makeLogRecord({"msg": message, "levelname": "INFO", "name": "t"})
    TenantLogFilter().filter(record)
    RequestLogFilter().filter(record)
    return record


# ERRORS ---------------------------------------------------------------------------------


def test_error_report_keeps_the_user_id_and_nothing_personal() -> None:
    tenant = TenantRef(
        id=uuid.uuid4(),
        schema_name=f"t_{uuid.uuid4().hex}",
        subdomain="gamma",
        name="Gamma",
        status="active",
    )
    event: dict[str, Any] = {
        "message": "could not invite someone@example.com",
        "user": {"id": "7", "email": "someone@example.com", "ip_address": "192.0.2.1"},
        "request": {
            "method": "POST",
            "url": "http://gamma.localhost/members/?email=someone@example.com",
            "query_string": "email=someone@example.com",
            "cookies": {"sessionid": "secret"},
            "data": {"email": "someone@example.com", "password": "hunter22"},
            "env": {"REMOTE_ADDR": "192.0.2.1"},
            "headers": {
                "Host": "gamma.localhost",
                "Cookie": "sessionid=secret",
                "Authorization": "Bearer secret",
                "X-Forwarded-For": "192.0.2.1",
                "User-Agent": "Firefox",
            },
        },
        "extra": {"celery-job": {"task_name": "mail.deliver", "kwargs": {"to": "a@b.example"}}},
        "breadcrumbs": {"values": [{"message": "sent", "data": {"to": "a@b.example"}}]},
        "server_name": "web-1",
    }
    with tenant_context(tenant), request_id_context("req-telemetry-1"):
        prepared = event_prepare(event)

    assert prepared["tags"] == {
        "tenant": "gamma",
        "tenant_id": str(tenant.id),
        "request_id": "req-telemetry-1",
    }
    assert "user" not in prepared  # no signed-in user in this context: no user at all
    assert prepared["request"] == {
        "method": "POST",
        "url": "http://gamma.localhost/members/",
        "headers": {"Host": "gamma.localhost"},
    }
    assert prepared["extra"] == {"celery-job": {"task_name": "mail.deliver"}}
    assert prepared["breadcrumbs"] == {"values": [{"message": "sent"}]}
    assert prepared["message"] == f"could not invite {EMAIL_MASK}"
    body = json.dumps(prepared)
    for personal in ("@example.com", "@b.example", "192.0.2.1", "secret", "hunter22", "web-1"):
        assert personal not in body


@pytest.fixture
def reporting(sentry_sink: SentrySink) -> Iterator[SentrySink]:
    """Sentry on in this process for one test, reporting to the local sink."""
    sentry_init(
        dsn=sentry_sink.dsn, environment="test", release="test-release", traces_sample_rate=0
    )
    yield sentry_sink
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def _events_for(sink: SentrySink, request_id: str) -> list[dict[str, Any]]:
    return [e for e in sink.events() if e.get("tags", {}).get("request_id") == request_id]


def test_view_error_in_a_is_reported_once_with_a_request_and_user_id(
    reporting: SentrySink, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the owner of A signed in, and a page that fails with their e-mail in the message
    from tenant_apps.projects import selectors

    def broken() -> None:
        raise RuntimeError(f"dashboard failed for {TENANT_A.owner_email}")

    monkeypatch.setattr(selectors, "dashboard_open_tasks", broken)
    client = Client(HTTP_HOST=TENANT_A.host, raise_request_exception=False)
    with tenant_context(tenant_a):
        owner = User.objects.get(email=TENANT_A.owner_email)
        client.force_login(owner)
    request_id = f"err-{uuid.uuid4().hex[:12]}"

    # when
    response = client.get("/projects/", HTTP_X_REQUEST_ID=request_id)
    sentry_sdk.flush(timeout=10)

    # then
    assert response.status_code == 500
    events = wait_for(lambda: _events_for(reporting, request_id), message="no event arrived")
    assert len(events) == 1
    event = events[0]
    assert event["tags"]["tenant"] == "alpha"
    assert event["tags"]["tenant_id"] == str(tenant_a.id)
    assert event["user"] == {"id": str(owner.pk)}
    assert (event["environment"], event["release"]) == ("test", "test-release")
    assert event["exception"]["values"][-1]["value"] == f"dashboard failed for {EMAIL_MASK}"
    envelopes = reporting.envelopes_with(request_id)
    assert envelopes
    assert not [body for body in envelopes if EMAIL.search(body.decode())]


@pytest.mark.usefixtures("celery_worker_log")
def test_failing_task_in_the_worker_is_reported_with_its_tenant_and_request(
    committed: tuple[Tenant, Tenant], sentry_sink: SentrySink
) -> None:
    tenant_a, _ = committed
    request_id = f"task-{uuid.uuid4().hex[:12]}"
    with tenant_context(tenant_a), request_id_context(request_id):
        app.tasks["probe.fail"].apply_async()

    events = wait_for(lambda: _events_for(sentry_sink, request_id), message="no task event")
    assert len(events) == 1
    event = events[0]
    assert event["tags"]["tenant"] == "alpha"
    assert event["tags"]["tenant_id"] == str(tenant_a.id)
    assert (event["environment"], event["release"]) == ("test", "test-release")
    assert event["exception"]["values"][-1]["value"] == "probe failure inside a tenant"
    assert "user" not in event  # tasks carry no user
    envelopes = sentry_sink.envelopes_with(request_id)
    assert envelopes
    assert not [body for body in envelopes if EMAIL.search(body.decode())]


# TRACES ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def traced(django_db_blocker: Any) -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process for this module's tests, into memory.

    The test database connection is reopened, so the instrumented driver makes it, and
    reopened again after, so the rest of the session runs untraced.
    """
    exporter = InMemorySpanExporter()
    with django_db_blocker.unblock():
        connections.close_all()
    provider = tracing_init(
        exporter,
        service_name="tenant-platform-test",
        environment="test",
        release="test-release",
        batch=False,
        set_global=False,
    )
    yield exporter
    uninstrument()
    provider.shutdown()
    with django_db_blocker.unblock():
        connections.close_all()


@pytest.fixture
def spans(traced: InMemorySpanExporter) -> InMemorySpanExporter:
    traced.clear()
    return traced


def test_log_lines_have_null_trace_ids_outside_a_span() -> None:
    line = json.loads(JsonLineFormatter().format(_record("outside")))
    assert (line["trace_id"], line["span_id"]) == (None, None)


def test_request_in_a_is_a_server_span_with_tenant_request_and_query_children(
    spans: InMemorySpanExporter, tenant_a: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(HTTP_HOST=TENANT_A.host)
    with tenant_context(tenant_a):
        client.force_login(User.objects.get(email=TENANT_A.owner_email))
    spans.clear()
    caplog.handler.addFilter(TenantLogFilter())
    caplog.handler.addFilter(RequestLogFilter())
    caplog.set_level("INFO")
    request_id = f"span-{uuid.uuid4().hex[:12]}"

    response = client.get("/projects/999999/", HTTP_X_REQUEST_ID=request_id)

    assert response.status_code == 404
    finished = spans.get_finished_spans()
    [server] = [span for span in finished if span.kind == SpanKind.SERVER]
    assert server.attributes is not None
    assert server.attributes["tenant.id"] == str(tenant_a.id)
    assert server.attributes["tenant.subdomain"] == "alpha"
    assert server.attributes["request.id"] == request_id
    queries = [s for s in finished if (s.attributes or {}).get("db.system") == "postgresql"]
    assert queries
    assert {s.context.trace_id for s in queries} == {server.context.trace_id}
    assert {s.parent.span_id for s in queries if s.parent} == {server.context.span_id}
    # routing's own lookups run before any tenant is known; everything after runs in A
    tenants = [(s.attributes or {}).get("tenant.id") for s in queries]
    assert set(tenants) - {None} == {str(tenant_a.id)}
    assert {(s.attributes or {}).get("request.id") for s in queries} == {request_id}
    # the 404's log line joins the trace
    [line] = [r for r in caplog.records if r.getMessage() == "Not Found: /projects/999999/"]
    assert line.trace_id == format(server.context.trace_id, "032x")  # type: ignore[attr-defined]
    assert line.request_id == request_id  # type: ignore[attr-defined]
    # nothing personal is exported: no client address, no user agent
    assert not {"net.peer.ip", "client.address", "http.user_agent"} & set(server.attributes)


@pytest.mark.usefixtures("celery_worker_log")
def test_request_and_the_task_it_queues_share_one_trace_and_request_id(
    spans: InMemorySpanExporter,
    committed: tuple[Tenant, Tenant],
    s3_storage: None,
    otlp_receiver: OtlpReceiver,
) -> None:
    # given
    tenant_a, _ = committed
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Traced across")
        owner = User.objects.get(email=TENANT_A.owner_email)
    client = Client(HTTP_HOST=TENANT_A.host)
    with tenant_context(tenant_a):
        client.force_login(owner)
    spans.clear()
    request_id = f"joint-{uuid.uuid4().hex[:12]}"

    # when: the page queues the export, the worker builds it
    response = client.post(f"/projects/{project.pk}/exports/", HTTP_X_REQUEST_ID=request_id)
    assert response.status_code == 302

    # then
    finished = spans.get_finished_spans()
    [server] = [span for span in finished if span.kind == SpanKind.SERVER]
    [publish] = [span for span in finished if span.kind == SpanKind.PRODUCER]
    assert publish.context.trace_id == server.context.trace_id

    def worker_spans() -> list[Any]:
        found = [
            span
            for span in otlp_receiver.received()
            if span.attributes.get("request.id") == request_id
        ]
        return found if any(span.kind == "SPAN_KIND_CONSUMER" for span in found) else []

    received = wait_for(worker_spans, message="the worker's spans did not arrive")
    [run] = [span for span in received if span.kind == "SPAN_KIND_CONSUMER"]
    assert run.service == "tenant-platform-worker"
    assert run.trace_id == format(server.context.trace_id, "032x")
    assert run.parent_span_id == format(publish.context.span_id, "016x")
    assert run.attributes["tenant.id"] == str(tenant_a.id)
    assert run.attributes["tenant.subdomain"] == "alpha"
    assert {span.trace_id for span in received} == {run.trace_id}
    assert server.attributes is not None
    assert server.attributes["request.id"] == request_id
    assert server.attributes["tenant.id"] == str(tenant_a.id)


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _serve_with_tracer(monkeypatch: pytest.MonkeyPatch, rate: float, traceparent: str) -> list[Any]:
    """One request through ServerSpanMiddleware with a tracer sampling at `rate`."""
    from django.http import HttpResponse
    from django.test import RequestFactory
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    import core.tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=core.tracing.sampler_for(rate))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(core.tracing, "_tracer", provider.get_tracer("test"))
    middleware = core.tracing.ServerSpanMiddleware(lambda request: HttpResponse("ok"))
    request = RequestFactory().get("/anything/", HTTP_TRACEPARENT=traceparent)

    assert middleware(request).status_code == 200
    return list(exporter.get_finished_spans())


def test_a_callers_sampled_flag_does_not_force_a_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = _serve_with_tracer(monkeypatch, 0.0, f"00-{TRACE_ID}-00f067aa0ba902b7-01")

    assert spans == []


def test_a_kept_request_joins_the_callers_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    [span] = _serve_with_tracer(monkeypatch, 1.0, f"00-{TRACE_ID}-00f067aa0ba902b7-00")

    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.kind == SpanKind.SERVER
    assert span.attributes["http.response.status_code"] == 200


def test_malformed_telemetry_settings_stop_start_up(capsys: pytest.CaptureFixture[str]) -> None:
    from config.settings.env import load_env

    with pytest.raises(SystemExit) as stopped:
        load_env(SENTRY_DSN="sentry.example.com/1", OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318")

    assert stopped.value.code == 78
    errors = capsys.readouterr().err
    assert "SENTRY_DSN is invalid" in errors
    assert "OTEL_EXPORTER_OTLP_ENDPOINT is invalid" in errors
