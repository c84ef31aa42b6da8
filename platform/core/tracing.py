"""Traces over OpenTelemetry: Django, the database, Redis, Celery and outbound HTTP, each span
carrying the tenant and request id (core.telemetry turns it on when configured)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode

from core.redaction import redact
from core.request_context import HEADER as REQUEST_ID_HEADER

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Tracer


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


def _span_context_attributes() -> dict[str, str]:
    attributes: dict[str, str] = {}
    tenant_id, tenant = work_tenant()
    if tenant_id is not None:
        attributes["tenant.id"] = tenant_id
    if tenant is not None:
        attributes["tenant.subdomain"] = tenant
    request_id = work_request_id()
    if request_id:
        attributes["request.id"] = request_id
    return attributes


def _scrubbed_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key in DROPPED_ATTRIBUTES:
            continue
        kept[key] = EMAIL.sub(EMAIL_MASK, redact(value)) if isinstance(value, str) else value
    return kept


# THE SERVER SPAN ------------------------------------------------------------------------

# Set by `instrument`: while it is None the middleware below passes requests straight on.
_tracer: Tracer | None = None
_excluded_paths: re.Pattern[str] | None = None


class _MetaGetter:
    """Read W3C trace headers (`traceparent`, `tracestate`) from a request's META."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if value else None

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return []


_META_GETTER = _MetaGetter()


class ServerSpanMiddleware:
    """First middleware: one server span per request, when tracing is on.

    Lean on purpose (the instrumentation package's middleware resolves the URL a second time
    and collects a dozen attributes per request, sampled or not): the span starts with the
    method only, and a kept span learns its route, status, tenant and request id at the
    end, when the routed request and the response know them. An unsampled request costs
    one sampling decision and a context switch.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tracer = _tracer
        if tracer is None or (_excluded_paths and _excluded_paths.search(request.path_info)):
            return self.get_response(request)
        method = request.method or "GET"
        # A caller's trace is joined, never obeyed: the sampler decides from the trace id.
        parent = None
        if "HTTP_TRACEPARENT" in request.META:
            parent = extract(request.META, getter=_META_GETTER)  # type: ignore[arg-type]
        span = tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            response = self.get_response(request)
        except BaseException as error:
            if span.is_recording():
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()
            raise
        finally:
            otel_context.detach(token)
        if span.is_recording():
            _server_span_finish(span, request, response)
        span.end()
        return response


def _server_span_finish(span: Any, request: HttpRequest, response: HttpResponse) -> None:
    match = getattr(request, "resolver_match", None)
    route = match.route if match is not None else ""
    attributes: dict[str, Any] = {
        "http.response.status_code": response.status_code,
        "url.scheme": request.scheme or "http",
    }
    # The tenant's and the request id's contexts are left by now: the routed request and
    # the response (the request id middleware sits below this span) still say both.
    tenant_id, tenant = work_tenant(request)
    if tenant_id is not None:
        attributes["tenant.id"] = tenant_id
    if tenant is not None:
        attributes["tenant.subdomain"] = tenant
    request_id = response.get(REQUEST_ID_HEADER)
    if request_id:
        attributes["request.id"] = request_id
    if route:
        attributes["http.route"] = route
        span.update_name(f"{request.method} {route}")
    if match is not None and match.view_name:
        attributes["django.view"] = match.view_name
    span.set_attributes(attributes)
    if response.status_code >= 500:
        span.set_status(Status(StatusCode.ERROR))


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

    class ContextSpanProcessor(SpanProcessor):
        """Every span starts with the tenant and request id of the work in progress."""

        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            # A request's span starts before either is known; it learns them at its end.
            if span.kind != SpanKind.SERVER:
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


def sampler_for(rate: float) -> Any:
    """Keep `rate` of the traces that start at a request, a task or a publish.

    A caller's sampled flag (a `traceparent` from the internet, or from the web process that
    published a task) does not decide: the ratio does, from the trace id, so web and worker
    with one rate keep or drop a trace together and no client can force traces on us.
    """
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    _, _, work_sampler = _build_span_classes()
    ratio = TraceIdRatioBased(rate)
    return ParentBased(
        root=work_sampler(rate), remote_parent_sampled=ratio, remote_parent_not_sampled=ratio
    )


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
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    context_processor, scrubbing_exporter, _ = _build_span_classes()
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": release or "unknown",
            "deployment.environment.name": environment,
        }
    )
    provider = TracerProvider(resource=resource, sampler=sampler_for(sample_rate))
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
    """Trace requests (ServerSpanMiddleware), psycopg, Redis, Celery and requests (idempotent)."""
    global _tracer, _excluded_paths
    from django.conf import settings
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    excluded = settings.TELEMETRY_TRACES_EXCLUDED_URLS
    _excluded_paths = re.compile("|".join(excluded)) if excluded else None
    _tracer = provider.get_tracer("core.tracing")
    PsycopgInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
    RedisInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)


def uninstrument() -> None:
    """Undo `instrument` (tests that traced one block)."""
    global _tracer
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    _tracer = None
    for instrumentor in (
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
