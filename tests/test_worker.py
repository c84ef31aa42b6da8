"""A real Celery worker process: tasks run in the tenant that queued them, and only there."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client

import tests.celery_probe  # noqa: F401  (registers the probe tasks in this process too)
from config.celery import app
from core.request_context import request_id_context
from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.tasks import tenants_fan_out_task
from tenancy import tenant_context
from tenant_apps.projects.models import Export
from tenant_apps.projects.selectors import DASHBOARD_KEY
from tests.factories import ProjectFactory, TaskFactory
from tests.infra import BUCKET, wait_for

pytestmark = pytest.mark.usefixtures("celery_worker_log")


def report(key: str) -> dict[str, Any] | None:
    value = caches["platform"].get(key)
    return dict(value) if value else None


def probe(name: str, tenant: Tenant | None = None, **kwargs: Any) -> dict[str, Any]:
    key = f"probe:{uuid.uuid4().hex}"
    if tenant is None:
        app.tasks[name].apply_async(kwargs={"key": key, **kwargs})
    else:
        with tenant_context(tenant):
            app.tasks[name].apply_async(kwargs={"key": key, **kwargs})
    return dict(wait_for(lambda: report(key), message=f"{name} did not report"))


def worker_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_export_queued_in_a_is_built_in_a_only(
    committed: tuple[Tenant, Tenant], s3_storage: None, s3_client: Any
) -> None:
    tenant_a, tenant_b = committed
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Export me")
        TaskFactory.create(project=project, title="first, with a comma")
        TaskFactory.create(project=project, title="second")
        owner = User.objects.get(email="owner@alpha.test")
    client = Client(HTTP_HOST="alpha.localhost")
    with tenant_context(tenant_a):
        client.force_login(owner)

    assert client.post(f"/projects/{project.pk}/exports/").status_code == 302

    def ready() -> Export | None:
        with tenant_context(tenant_a):
            return Export.objects.filter(project=project, status=Export.Status.DONE).first()

    export = wait_for(ready, message="the worker did not build the export")
    assert export.rows == 2
    key = f"tenants/{tenant_a.id}/{export.file.name}"
    body = s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert body.splitlines()[1].split(",")[1:3] == ['"first', ' with a comma"']
    # nothing landed in B: no export rows, no objects under B's prefix
    with tenant_context(tenant_b):
        assert not Export.objects.exists()
    listed = s3_client.list_objects_v2(Bucket=BUCKET, Prefix=f"tenants/{tenant_b.id}/exports/")
    assert listed["KeyCount"] == 0

    page = client.get(f"/projects/{project.pk}/")
    assert b"Download CSV" in page.content
    link = client.get(f"/projects/{project.pk}/exports/{export.pk}/")
    assert link.status_code == 302


def test_tasks_of_a_then_b_in_one_worker_do_not_leak(committed: tuple[Tenant, Tenant]) -> None:
    tenant_a, tenant_b = committed
    in_a = probe("probe.where_am_i", tenant_a)
    in_b = probe("probe.where_am_i", tenant_b)
    assert (in_a["tenant"], in_a["schema"]) == ("alpha", tenant_a.schema_name)
    assert (in_b["tenant"], in_b["schema"]) == ("beta", tenant_b.schema_name)


def test_failing_task_leaves_the_worker_on_public(committed: tuple[Tenant, Tenant]) -> None:
    tenant_a, _ = committed
    with tenant_context(tenant_a):
        app.tasks["probe.fail"].apply_async()
    after = probe("probe.connection_state")  # a plain task: sees what was left behind
    assert after == {
        "tenant": None,
        "schema": "public",
        "connection_schema": "public",
        "request_id": None,
    }


def test_message_without_tenant_is_refused(
    committed: tuple[Tenant, Tenant], celery_worker_log: Path
) -> None:
    key = f"probe:{uuid.uuid4().hex}"
    with pytest.raises(RuntimeError, match="needs a tenant"):
        app.tasks["probe.where_am_i"].apply_async(kwargs={"key": key})  # refused at the source
    app.send_task("probe.where_am_i", kwargs={"key": key})  # by name: no tenant header
    probe("probe.connection_state")  # the worker has handled everything sent before
    assert report(key) is None
    refused = [
        line
        for line in worker_lines(celery_worker_log)
        if line["message"] == "task refused: no tenant"
    ]
    assert refused
    assert refused[-1]["task"] == "probe.where_am_i"


def test_request_and_its_task_log_the_same_request_id_and_tenant(
    committed: tuple[Tenant, Tenant],
    s3_storage: None,
    celery_worker_log: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from core.logging import RequestLogFilter
    from tenancy.logging import TenantLogFilter

    tenant_a, _ = committed
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Traced")
        owner = User.objects.get(email="owner@alpha.test")
    client = Client(HTTP_HOST="alpha.localhost")
    with tenant_context(tenant_a):
        client.force_login(owner)
    caplog.handler.addFilter(TenantLogFilter())
    caplog.handler.addFilter(RequestLogFilter())
    caplog.set_level("INFO")

    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    response = client.post(f"/projects/{project.pk}/exports/", HTTP_X_REQUEST_ID=request_id)
    assert response["X-Request-ID"] == request_id

    web = [r for r in caplog.records if r.getMessage() == "export requested"]
    assert [(r.request_id, r.tenant, r.user_id) for r in web] == [  # type: ignore[attr-defined]
        (request_id, "alpha", owner.pk)
    ]

    def worker_line() -> dict[str, Any] | None:
        for line in worker_lines(celery_worker_log):
            if line["message"] == "export finished" and line["request_id"] == request_id:
                return line
        return None

    line = wait_for(worker_line, message="the worker did not log the export")
    assert line["tenant"] == "alpha"


def test_beat_fan_out_reaches_every_active_tenant(committed: tuple[Tenant, Tenant]) -> None:
    tenant_a, tenant_b = committed
    for tenant in committed:
        with tenant_context(tenant):
            caches["default"].delete(DASHBOARD_KEY)
    with tenant_context(tenant_a):
        TaskFactory.create(project__name="Fan", title="open")

    queued = tenants_fan_out_task.apply_async(kwargs={"task_name": "projects.dashboard_refresh"})
    assert queued.id

    def refreshed(tenant: Tenant) -> Any:
        with tenant_context(tenant):
            return caches["default"].get(DASHBOARD_KEY)

    assert wait_for(lambda: refreshed(tenant_a)) == {"Fan": 1}
    assert wait_for(lambda: refreshed(tenant_b) is not None) is True
    with tenant_context(tenant_b):
        assert caches["default"].get(DASHBOARD_KEY) == {}


def test_celerys_own_lines_name_the_tenant_and_request(
    committed: tuple[Tenant, Tenant], celery_worker_log: Path
) -> None:
    tenant_a, _ = committed
    request_id = f"celery-{uuid.uuid4().hex[:12]}"
    key = f"probe:{uuid.uuid4().hex}"
    with tenant_context(tenant_a), request_id_context(request_id):
        app.tasks["probe.where_am_i"].apply_async(kwargs={"key": key})

    def succeeded() -> dict[str, Any] | None:
        for line in worker_lines(celery_worker_log):
            if line["logger"] == "celery.app.trace" and line.get("request_id") == request_id:
                return line
        return None

    line = wait_for(succeeded, message="no line of Celery's own for the task")
    assert "succeeded" in line["message"]
    assert line["tenant"] == "alpha"
