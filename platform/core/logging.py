"""Every log line is one JSON object carrying tenant, request id, user id and the trace and
span ids of the active OpenTelemetry span (null outside one), and no token (core.redaction)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from opentelemetry import trace

from core.redaction import redact
from core.request_context import current_request_id, current_user_id

# Attributes every LogRecord has; anything else was passed with `extra=` and is a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_CONTEXT = ("tenant", "request_id", "user_id", "trace_id", "span_id")


def current_task_header(name: str) -> str | None:
    """A header of the Celery task being executed in this thread, if any.

    Celery's own lines ("Task … succeeded in 0.01s") are written by its tracer around the
    task body, outside the contexts the body runs in; the message's headers still say whose
    task it is.
    """
    from celery import current_task

    request = getattr(current_task, "request", None) if current_task else None
    if request is None:
        return None
    headers = getattr(request, "headers", None) or {}
    value = headers.get(name) or getattr(request, name, None)
    return str(value) if value else None


def current_trace_ids() -> tuple[str | None, str | None]:
    """The active span's trace and span ids as hex, so logs and traces join; (None, None)
    outside a span, and always when tracing is off (the API's span is then a no-op)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class RequestLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or current_task_header("request_id")
        record.user_id = current_user_id()
        record.trace_id, record.span_id = current_trace_ids()
        return True


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _CONTEXT:
            entry[key] = getattr(record, key, None)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _CONTEXT and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))
