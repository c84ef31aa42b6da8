"""Tasks the test worker imports (`-I tests.celery_probe`) to report what it sees."""

from __future__ import annotations

from celery import Task as PlainTask
from django.core.cache import caches

from config.celery import app
from core.request_context import current_request_id
from tenancy import current_tenant
from tenancy.db import tenant_connection


def _report(key: str) -> None:
    connection = tenant_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    tenant = current_tenant()
    caches["platform"].set(
        key,
        {
            "tenant": tenant.subdomain if tenant else None,
            "schema": schema,
            "connection_schema": connection.schema_name,
            "request_id": current_request_id(),
        },
        timeout=300,
    )


@app.task(name="probe.where_am_i")
def where_am_i(*, key: str) -> None:
    """A tenant task: reports its tenant, schema and request id."""
    _report(key)


@app.task(name="probe.fail")
def fail() -> None:
    raise RuntimeError("probe failure inside a tenant")


@app.task(name="probe.connection_state", base=PlainTask)
def connection_state(*, key: str) -> None:
    """A plain task, outside any tenant handling: shows what the previous task left behind."""
    _report(key)
