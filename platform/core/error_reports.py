"""Error reports to Sentry: the tenant, the request id and the user's id on every event;
nothing personal (core.telemetry says what never leaves the process)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.logging import current_trace_ids
from core.redaction import redact
from core.request_context import current_user_id

if TYPE_CHECKING:
    pass


from core.telemetry import EMAIL, EMAIL_MASK, work_request_id, work_tenant

logger = logging.getLogger(__name__)

# Request headers an error report keeps; everything else (cookies, authorization, proxies'
# client addresses, user agents) stays home.
KEPT_HEADERS = frozenset({"host", "accept", "content-type", "content-length", "x-request-id"})


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
    tenant_id, tenant = work_tenant()
    tags = event.get("tags")
    tags = dict(tags) if isinstance(tags, dict) else {}
    if tenant is not None:
        tags["tenant"] = tenant
    if tenant_id is not None:
        tags["tenant_id"] = tenant_id
    request_id = work_request_id()
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
