"""Tasks the test worker imports (`-I tests.celery_probe`) to report what it sees."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from celery import Task as PlainTask
from django.core.cache import caches

from config.celery import app
from core.request_context import current_request_id
from tenancy import current_tenant
from tenancy.db import tenant_connection
from tenancy.tasks import PlatformTask


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


def recorded_key(key: str) -> str:
    return f"probe-list:{key}"


def recorded(key: str) -> list[dict[str, Any]]:
    """What `probe.record` and its kin appended under `key`, in the order they ran."""
    from django_redis import get_redis_connection  # type: ignore[import-untyped]

    rows = get_redis_connection("platform").lrange(recorded_key(key), 0, -1)
    return [json.loads(row) for row in rows]


def _append(key: str, label: str, **extra: Any) -> None:
    from django_redis import get_redis_connection

    tenant = current_tenant()
    connection = get_redis_connection("platform")
    row = {"label": label, "tenant": tenant.subdomain if tenant else None, **extra}
    connection.rpush(recorded_key(key), json.dumps(row))
    connection.expire(recorded_key(key), 600)


@app.task(name="probe.record")
def record(*, key: str, label: str, sleep: float = 0.0) -> None:
    """A tenant task: appends its label, tenant and start time to a list the test reads."""
    started = time.time()
    time.sleep(sleep)
    _append(key, label, at=started)


@app.task(name="probe.platform_record", base=PlatformTask)
def platform_record(*, key: str, label: str) -> None:
    """A platform task (the platform queue): appends its label like `probe.record`."""
    _append(key, label, at=time.time())


@app.task(name="probe.die_once", bind=True)
def die_once(self: PlainTask, *, key: str) -> None:
    """Kills its own pool process on first delivery; reports when delivered again."""
    if not (self.request.delivery_info or {}).get("redelivered"):
        os.kill(os.getpid(), signal.SIGKILL)
    _append(key, "redelivered", task_id=self.request.id)
