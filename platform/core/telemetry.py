"""Error reports (Sentry) and traces (OpenTelemetry), both naming the tenant and request.

`telemetry_init` runs once per process: the web entry points call it after Django is set
up, the worker in each process that runs tasks, beat when it starts. Each half is on only
when configured (`SENTRY_DSN`, `OTEL_EXPORTER_OTLP_ENDPOINT`); otherwise nothing is
patched, nothing is instrumented and the OpenTelemetry API stays a no-op. The halves live
in `core.error_reports` and `core.tracing`.

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
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.logging import current_task_header
from core.request_context import current_request_id

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

# (tenant id, tenant name for people: its subdomain or "public"); either may be unknown.
TenantFields = Callable[["HttpRequest | None"], tuple[str | None, str | None]]

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
EMAIL_MASK = "[email]"

_initialised_pid: int | None = None
_tenant_fields: TenantFields | None = None


# CONTEXT --------------------------------------------------------------------------------


def work_tenant(request: HttpRequest | None = None) -> tuple[str | None, str | None]:
    global _tenant_fields
    if _tenant_fields is None:
        from django.conf import settings
        from django.utils.module_loading import import_string

        _tenant_fields = import_string(settings.TELEMETRY_TENANT)
    return _tenant_fields(request)


def work_request_id() -> str | None:
    # Celery's tracer captures a task's error around the task body, where the body's own
    # context has already been left; the message's headers still carry the id.
    return current_request_id() or current_task_header("request_id")


# START-UP -------------------------------------------------------------------------------


def telemetry_init(component: str) -> None:
    """Turn on error reports and traces as configured; once per process (`web`, `worker`)."""
    global _initialised_pid
    if _initialised_pid == os.getpid():
        return
    _initialised_pid = os.getpid()
    from django.conf import settings

    if settings.SENTRY_DSN:
        from core.error_reports import sentry_init

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

        from core.tracing import tracing_init

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
