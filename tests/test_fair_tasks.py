"""Fair background work through a real worker: a flood in one workspace neither holds up
another workspace's task nor the platform's, tasks run only in their own tenant, a task
whose worker process died runs again, and a suspended workspace's queue is dropped.

Order, not time, is asserted: each probe records when it started, and the tests count
how many of the flood's tasks started between a task's publish and its own start.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

import tests.celery_probe  # noqa: F401  (registers the probe tasks in this process too)
from config.celery import app
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.services import tenant_suspend
from tenancy import tenant_context
from tenancy.lanes import TaskLanes, broker_lanes
from tests.celery_probe import recorded
from tests.infra import (
    ARTIFACTS,
    ROOT,
    broker_url,
    publish_on,
    wait_for,
    worker_start,
    worker_stop,
)
from tests.test_worker import worker_lines

# Tenant tasks kept ready for the workers, as configured (settings.TASKS_READY_DEPTH).
DEPTH = django_settings.TASKS_READY_DEPTH


def started_between(
    rows: list[dict[str, Any]], label_prefix: str, after: float, before: float
) -> list[dict[str, Any]]:
    """The rows of `label_prefix` tasks that started after `after` and before `before`."""
    return [r for r in rows if r["label"].startswith(label_prefix) and after < r["at"] < before]


@pytest.mark.usefixtures("celery_worker_log")
def test_a_flood_in_one_workspace_does_not_hold_up_anothers_task(
    committed: tuple[Tenant, Tenant],
) -> None:
    tenant_a, tenant_b = committed
    key = uuid.uuid4().hex
    # given: A queued 40 tasks, each a little slow
    with tenant_context(tenant_a):
        for n in range(40):
            app.tasks["probe.record"].apply_async(
                kwargs={"key": key, "label": f"a{n}", "sleep": 0.02}
            )
    # when: B queues one
    b_published = time.time()
    with tenant_context(tenant_b):
        app.tasks["probe.record"].apply_async(kwargs={"key": key, "label": "b"})

    rows = wait_for(lambda: (r := recorded(key)) and len(r) == 41 and r, 60, "the flood ran")
    # then: B's ran after at most the ready messages and the one running, not after A's 40
    b_row = next(r for r in rows if r["label"] == "b")
    assert len(started_between(rows, "a", b_published, b_row["at"])) <= DEPTH + 1
    # and every task ran in its own workspace, never the other's
    assert {r["tenant"] for r in rows if r["label"].startswith("a")} == {"alpha"}
    assert b_row["tenant"] == "beta"
    assert [r["label"] for r in rows if r["label"].startswith("a")] == [f"a{n}" for n in range(40)]


@pytest.mark.usefixtures("celery_worker_log")
def test_a_tenant_flood_does_not_hold_up_the_platforms_task(
    committed: tuple[Tenant, Tenant],
) -> None:
    tenant_a, _ = committed
    key = uuid.uuid4().hex
    with tenant_context(tenant_a):
        for n in range(30):
            app.tasks["probe.record"].apply_async(
                kwargs={"key": key, "label": f"a{n}", "sleep": 0.02}
            )
    published = time.time()
    app.tasks["probe.platform_record"].apply_async(kwargs={"key": key, "label": "platform"})

    rows = wait_for(lambda: (r := recorded(key)) and len(r) == 31 and r, 60, "the flood ran")
    platform = next(r for r in rows if r["label"] == "platform")
    # its own queue: behind at most the task running and the next ready one, never the lane
    assert len(started_between(rows, "a", published, platform["at"])) <= DEPTH + 1
    assert platform["tenant"] is None


@pytest.mark.usefixtures("celery_worker_log")
def test_a_suspended_workspaces_task_reaching_a_worker_is_skipped(
    committed: tuple[Tenant, Tenant], celery_worker_log: Path
) -> None:
    tenant_a, tenant_b = committed
    key = uuid.uuid4().hex
    with tenant_context(tenant_b):
        # a bulk update sends no signal: the lane is not dropped, the worker must skip it
        Tenant.objects.filter(pk=tenant_b.pk).update(status=Tenant.Status.SUSPENDED)
        try:
            app.tasks["probe.record"].apply_async(kwargs={"key": key, "label": "b"})
            with tenant_context(tenant_a):
                app.tasks["probe.record"].apply_async(kwargs={"key": key, "label": "a"})

            def skipped() -> bool:
                return any(
                    line["message"] == "task skipped: tenant not served"
                    and line.get("task") == "probe.record"
                    for line in worker_lines(celery_worker_log)
                )

            wait_for(lambda: recorded(key), 30, "A's task did not run")
            wait_for(skipped, 30, "B's task was not skipped")
        finally:
            Tenant.objects.filter(pk=tenant_b.pk).update(status=Tenant.Status.ACTIVE)
    assert [r["label"] for r in recorded(key)] == ["a"]


# --- a worker of its own: a prefork child killed in the middle of a task ------------------

OWN_BROKER_DB = 6


def own_broker_url() -> str:
    return broker_url(OWN_BROKER_DB)


@pytest.fixture
def prefork_worker(committed: tuple[Tenant, Tenant], settings: Any) -> Iterator[Path]:
    """A prefork worker (one child) on a broker database of its own."""
    redis.Redis.from_url(own_broker_url()).flushdb()
    log_path = ARTIFACTS / "worker-prefork.log"
    process = worker_start(
        log_path,
        "--pool",
        "prefork",
        "--concurrency",
        "1",
        env={"TEST_BROKER_DB": str(OWN_BROKER_DB)},
    )
    settings.CELERY_BROKER_URL = own_broker_url()
    try:
        yield log_path
    finally:
        worker_stop(process)
        redis.Redis.from_url(own_broker_url()).flushdb()


def test_a_task_whose_worker_process_died_runs_again(
    committed: tuple[Tenant, Tenant], prefork_worker: Path
) -> None:
    tenant_a, _ = committed
    key = uuid.uuid4().hex
    lanes = broker_lanes()
    with app.connection_for_write(own_broker_url()) as connection, tenant_context(tenant_a):
        publish_on(connection, "probe.die_once", key=key)

    rows = wait_for(lambda: recorded(key), 60, "the task was not delivered again")
    assert [(r["label"], r["tenant"]) for r in rows] == [("redelivered", "alpha")]
    assert "WorkerLostError" in prefork_worker.read_text()
    # its slot is free again, and nothing is left anywhere
    wait_for(lambda: lanes.running(str(tenant_a.id)) == 0, 10, "the slot was not freed")
    stats = lanes.stats()
    assert (stats.pending, stats.ready, stats.delayed) == (0, 0, 0)


# --- dropping a workspace's queue ---------------------------------------------------------


def test_suspending_a_workspace_drops_its_queued_tasks_only(
    lanes_db: TaskLanes,
    tenant_a: Tenant,
    tenant_b: Tenant,
    django_capture_on_commit_callbacks: Any,
) -> None:
    for tenant in (tenant_a, tenant_b):
        for n in range(3):
            payload = {"headers": {"id": f"{tenant.subdomain}{n}", "tenant_id": str(tenant.id)}}
            lanes_db.enqueue(str(tenant.id), json.dumps(payload))
    assert len(lanes_db.lane(str(tenant_a.id))) == 2  # one of A's went to the ready list

    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(reason="unpaid invoice", actor="test", tenant=tenant_a)

    assert lanes_db.lane(str(tenant_a.id)) == []
    assert len(lanes_db.lane(str(tenant_b.id))) == 3


# --- every way to run the platform has a worker for the platform queue ------------------


def test_every_deployment_runs_a_platform_worker() -> None:
    assert (
        "platform-worker: deploy/entrypoint.sh platform-worker"
        in (ROOT / "deploy" / "Procfile").read_text()
    )
    assert 'command: ["platform-worker"]' in (ROOT / "compose.yaml").read_text()
    assert (
        'args: ["platform-worker"]'
        in (ROOT / "deploy" / "k8s" / "base" / "platform-worker.yaml").read_text()
    )
    entrypoint = (ROOT / "deploy" / "entrypoint.sh").read_text()
    assert "--queues platform" in entrypoint
    assert "--queues platform" in (ROOT / "scripts" / "run.py").read_text()
