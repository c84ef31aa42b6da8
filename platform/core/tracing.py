"""Traces over OpenTelemetry: Django, the database, Redis, Celery and outbound HTTP, each span
carrying the tenant and request id (core.telemetry turns it on when configured)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from core.redaction import redact
from core.request_context import HEADER as REQUEST_ID_HEADER

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Span as ApiSpan


from core.telemetry import EMAIL, EMAIL_MASK, work_request_id, work_tenant

logger = logging.getLogger(__name__)

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


# TRACES (OPENTELEMETRY) -----------------------------------------------------------------


def _span_context_attributes(request: HttpRequest | None = None) -> dict[str, str]:
    attributes: dict[str, str] = {}
    tenant_id, tenant = work_tenant(request)
    if tenant_id is not None:
        attributes["tenant.id"] = tenant_id
    if tenant is not None:
        attributes["tenant.subdomain"] = tenant
    request_id = work_request_id()
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


@contextmanager
def outbound_untraced() -> Iterator[None]:
    """HTTP calls in this block carry no trace headers and make no span.

    For requests to addresses a customer chose (webhooks): a `traceparent` header would hand
    them the platform's trace ids, and a span would keep their URL in our traces.
    """
    from opentelemetry.instrumentation.utils import suppress_http_instrumentation

    with suppress_http_instrumentation():
        yield
