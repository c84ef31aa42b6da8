"""Error reports (Sentry) and traces (OpenTelemetry), both naming the tenant and request.

`telemetry_init` runs once per process: the web entry points call it after Django is set
up, the worker in each process that runs tasks, beat when it starts. Each half is on only
when configured (`SENTRY_DSN`, `OTEL_EXPORTER_OTLP_ENDPOINT`); otherwise nothing is
patched, nothing is instrumented and the OpenTelemetry API stays a no-op.

The tenant comes from the function the `TELEMETRY_TENANT` setting names (tenancy's, which
reads its ContextVar), the request id from `core.request_context`; both are read when an
event is captured or a span starts, so they are right under ASGI and in Celery tasks.

What never leaves the process: e-mail addresses, IP addresses, cookies, request bodies,
query strings, local variables, task arguments, tokens in platform URLs. Users are named
by id only.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from core.logging import current_task_header, current_trace_ids
from core.redaction import redact
from core.request_context import HEADER as REQUEST_ID_HEADER
from core.request_context import current_request_id, current_user_id

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Span as ApiSpan

logger = logging.getLogger(__name__)

# (tenant id, tenant name for people: its subdomain or "public"); either may be unknown.
TenantFields = Callable[["HttpRequest | None"], tuple[str | None, str | None]]

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
EMAIL_MASK = "[email]"
# Request headers an error report keeps; everything else (cookies, authorization, proxies'
# client addresses, user agents) stays home.
KEPT_HEADERS = frozenset({"host", "accept", "content-type", "content-length", "x-request-id"})
# Span attributes that name a person's address or browser: dropped before export.
DROPPED_ATTRIBUTES = frozenset(
    {
        "net.peer.ip",
        "net.sock.peer.addr",
        "client.address",
        "http.client_ip",
        "network.peer.address",
        "http.user_agent",
        "user_agent.original",
        "enduser.id",
    }
)

_initialised_pid: int | None = None
_tenant_fields: TenantFields | None = None


# CONTEXT --------------------------------------------------------------------------------


def _tenant(request: HttpRequest | None = None) -> tuple[str | None, str | None]:
    global _tenant_fields
    if _tenant_fields is None:
        from django.conf import settings
        from django.utils.module_loading import import_string

        _tenant_fields = import_string(settings.TELEMETRY_TENANT)
    return _tenant_fields(request)


def _request_id() -> str | None:
    # Celery's tracer captures a task's error around the task body, where the body's own
    # context has already been left; the message's headers still carry the id.
    return current_request_id() or current_task_header("request_id")


# ERRORS (SENTRY) ------------------------------------------------------------------------


def _scrubbed(value: Any) -> Any:
    """Mask e-mail addresses and platform URL secrets in every string of an event."""
    if isinstance(value, str):
        return EMAIL.sub(EMAIL_MASK, redact(value))
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def event_prepare(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Tag an error report with tenant, request, user id and trace; strip what is personal.

    Sentry calls this (`before_send`) in the thread that captured the error, so the
    platform's ContextVars still describe the work that failed.
    """
    tenant_id, tenant = _tenant()
    tags = event.get("tags")
    tags = dict(tags) if isinstance(tags, dict) else {}
    if tenant is not None:
        tags["tenant"] = tenant
    if tenant_id is not None:
        tags["tenant_id"] = tenant_id
    request_id = _request_id()
    if request_id:
        tags["request_id"] = request_id
    trace_id, _ = current_trace_ids()
    if trace_id:
        tags["trace_id"] = trace_id
    event["tags"] = tags

    user_id = current_user_id()
    if user_id is not None:
        event["user"] = {"id": str(user_id)}
    else:
        event.pop("user", None)

    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers") or {}
        event["request"] = {
            "method": request.get("method"),
            "url": _without_query(str(request.get("url") or "")),
            "headers": {
                name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS
            },
        }
    extra = event.get("extra")
    if isinstance(extra, dict) and isinstance(extra.get("celery-job"), dict):
        # Task arguments are ids by convention, but nothing guarantees it.
        job = extra["celery-job"]
        extra["celery-job"] = {"task_name": job.get("task_name")}
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict) and isinstance(breadcrumbs.get("values"), list):
        for crumb in breadcrumbs["values"]:
            if isinstance(crumb, dict):
                crumb.pop("data", None)  # log fields and query details: not needed, not sent
    event.pop("server_name", None)
    return dict(_scrubbed(event))


def sentry_init(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> None:
    """Report unhandled errors, error log lines and failed tasks to Sentry."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        send_default_pii=False,
        include_local_variables=False,  # frames' locals hold users, requests and forms
        max_request_body_size="never",
        # Sentry's trace headers would tell outside services (Stripe) our key and release.
        trace_propagation_targets=[],
        traces_sample_rate=traces_sample_rate or None,
        integrations=[
            # Traces are OpenTelemetry's job: no per-middleware or per-signal spans here.
            DjangoIntegration(
                transaction_style="url",
                middleware_spans=False,
                signals_spans=False,
                cache_spans=False,
            ),
            CeleryIntegration(monitor_beat_tasks=False),
        ],
        before_send=event_prepare,  # type: ignore[arg-type]
        before_send_transaction=event_prepare,  # type: ignore[arg-type]
    )


# TRACES (OPENTELEMETRY) -----------------------------------------------------------------


def _span_context_attributes(request: HttpRequest | None = None) -> dict[str, str]:
    attributes: dict[str, str] = {}
    tenant_id, tenant = _tenant(request)
    if tenant_id is not None:
        attributes["tenant.id"] = tenant_id
    if tenant is not None:
        attributes["tenant.subdomain"] = tenant
    request_id = _request_id()
    if request_id:
        attributes["request.id"] = request_id
    return attributes


def _django_response_hook(span: ApiSpan, request: HttpRequest, response: HttpResponse) -> None:
    # The server span starts before the request id and tenant are known and ends after
    # their contexts are left: the routed request and the response still say both.
    if not span.is_recording():
        return
    attributes = _span_context_attributes(request)
    request_id = response.get(REQUEST_ID_HEADER)
    if request_id:
        attributes["request.id"] = request_id
    span.set_attributes(attributes)


def _scrubbed_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key in DROPPED_ATTRIBUTES:
            continue
        kept[key] = EMAIL.sub(EMAIL_MASK, redact(value)) if isinstance(value, str) else value
    return kept


def _build_span_classes() -> tuple[type, type, type]:
    """The SDK classes are imported only when tracing is on; so are these subclasses."""
    from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import (
        Decision,
        Sampler,
        SamplingResult,
        TraceIdRatioBased,
    )
    from opentelemetry.trace import SpanKind

    class ContextSpanProcessor(SpanProcessor):
        """Every span starts with the tenant and request id of the work in progress."""

        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            span.set_attributes(_span_context_attributes())

    class ScrubbingExporter(SpanExporter):
        """Drop client addresses and user agents, mask e-mails and URL secrets, then export."""

        def __init__(self, inner: SpanExporter) -> None:
            self._inner = inner

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return self._inner.export([self._scrubbed(span) for span in spans])

        @staticmethod
        def _scrubbed(span: ReadableSpan) -> ReadableSpan:
            events = [
                Event(event.name, _scrubbed_attributes(event.attributes), event.timestamp)
                for event in span.events
            ]
            return ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                attributes=_scrubbed_attributes(span.attributes),
                events=events,
                links=span.links,
                kind=span.kind,
                status=span.status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )

        def shutdown(self) -> None:
            self._inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self._inner.force_flush(timeout_millis)

    class WorkSampler(Sampler):
        """Traces start at a request, a task or a publish; a lone query or cache call
        (the broker's bookkeeping, a command's queries) starts none."""

        def __init__(self, rate: float) -> None:
            self._ratio = TraceIdRatioBased(rate)

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind == SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return self._ratio.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"WorkSampler{{{self._ratio.get_description()}}}"

    return ContextSpanProcessor, ScrubbingExporter, WorkSampler


def tracing_init(
    exporter: SpanExporter,
    *,
    service_name: str,
    environment: str,
    release: str,
    sample_rate: float = 1.0,
    batch: bool = True,
    set_global: bool = True,
) -> TracerProvider:
    """Trace requests, tasks, queries, cache and broker calls and outbound HTTP to `exporter`."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    context_processor, scrubbing_exporter, work_sampler = _build_span_classes()
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": release or "unknown",
            "deployment.environment.name": environment,
        }
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(root=work_sampler(sample_rate))
    )
    provider.add_span_processor(context_processor())
    scrubbed = scrubbing_exporter(exporter)
    provider.add_span_processor(
        BatchSpanProcessor(scrubbed) if batch else SimpleSpanProcessor(scrubbed)
    )
    if set_global:
        trace.set_tracer_provider(provider)
    instrument(provider)
    return provider


def instrument(provider: TracerProvider) -> None:
    """Instrument Django, psycopg, Redis, Celery and requests (idempotent)."""
    from django.conf import settings
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    DjangoInstrumentor().instrument(
        tracer_provider=provider,
        response_hook=_django_response_hook,
        excluded_urls=",".join(settings.TELEMETRY_TRACES_EXCLUDED_URLS),
        # No SQL comments: they would change every statement the database sees.
        is_sql_commentor_enabled=False,
    )
    PsycopgInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
    RedisInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)


def uninstrument() -> None:
    """Undo `instrument` (tests that traced one block)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    for instrumentor in (
        DjangoInstrumentor(),
        PsycopgInstrumentor(),
        RedisInstrumentor(),
        CeleryInstrumentor(),
        RequestsInstrumentor(),
    ):
        instrumentor.uninstrument()


# START-UP -------------------------------------------------------------------------------


def telemetry_init(component: str) -> None:
    """Turn on error reports and traces as configured; once per process (`web`, `worker`)."""
    global _initialised_pid
    if _initialised_pid == os.getpid():
        return
    _initialised_pid = os.getpid()
    from django.conf import settings

    if settings.SENTRY_DSN:
        sentry_init(
            dsn=settings.SENTRY_DSN,
            environment=settings.SENTRY_ENVIRONMENT,
            release=settings.RELEASE,
            traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        )
    if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        from django.db import connections
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Only connections the instrumented driver opens are traced: none opened before.
        connections.close_all()

        endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
        tracing_init(
            OTLPSpanExporter(endpoint=endpoint, headers=settings.OTEL_EXPORTER_OTLP_HEADERS),
            service_name=f"{settings.OTEL_SERVICE_NAME}-{component}",
            environment=settings.SENTRY_ENVIRONMENT,
            release=settings.RELEASE,
            sample_rate=settings.TRACES_SAMPLE_RATE,
        )
    logger.info(
        "telemetry configured",
        extra={
            "component": component,
            "errors": bool(settings.SENTRY_DSN),
            "traces": bool(settings.OTEL_EXPORTER_OTLP_ENDPOINT),
        },
    )
