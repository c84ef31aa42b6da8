"""Tenant lanes: tasks of a busy tenant never hold up another tenant's, and none are lost.

These drive the lanes in a Redis database of their own, as a worker would: take the next
ready message, start it, finish it. The real worker's side is in tests/test_fair_tasks.py.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest

import tenancy.lanes as lanes_module
from config.celery import app
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenancy.lanes import PLATFORM_QUEUE, TENANT_QUEUE, TaskLanes, tenant_concurrency
from tests.infra import publish_on


@pytest.fixture
def lanes(lanes_db: TaskLanes) -> TaskLanes:
    return lanes_db


def message(tenant: str, label: str) -> str:
    headers = {"id": str(uuid.uuid4()), "tenant_id": tenant, "retries": 0, "label": label}
    return json.dumps({"headers": headers, "body": "", "properties": {}})


def take(lanes: TaskLanes) -> dict[str, Any] | None:
    """What a worker does with the next ready message: start it, return its headers."""
    raw = lanes.client.rpop(lanes.ready)
    if raw is None:
        return None
    headers: dict[str, Any] = json.loads(raw)["headers"]
    lanes.started(headers["tenant_id"], member(headers), lease_seconds=60, cap=0)
    return headers


def member(headers: dict[str, Any]) -> str:
    return f"{headers['id']}:{headers['retries']}"


def run_all(lanes: TaskLanes) -> list[str]:
    """Run every queued task one at a time (one worker process); return labels in order."""
    order = []
    while (headers := take(lanes)) is not None:
        lanes.finished(headers["tenant_id"], member(headers))
        order.append(headers["label"])
    return order


def test_a_quiet_tenant_goes_within_the_first_couple_despite_a_flood(lanes: TaskLanes) -> None:
    tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
    for n in range(50):
        lanes.enqueue(tenant_a, message(tenant_a, f"a{n}"))
    lanes.enqueue(tenant_b, message(tenant_b, "b"))

    order = run_all(lanes)

    # a0 was ready before B queued anything; then A's next turn, then B's
    assert order.index("b") <= 2
    assert [label for label in order if label != "b"] == [f"a{n}" for n in range(50)]


def test_busy_tenants_take_turns(lanes: TaskLanes) -> None:
    tenants = [str(uuid.uuid4()) for _ in range(3)]
    for n in range(4):
        for index, tenant in enumerate(tenants):
            lanes.enqueue(tenant, message(tenant, f"{index}:{n}"))

    order = run_all(lanes)

    # after the one dispatched at once, each round serves every tenant exactly once
    rounds = [order[1:][i : i + 3] for i in range(0, 9, 3)]
    for served in rounds:
        assert sorted(label.split(":")[0] for label in served) == ["0", "1", "2"]


def test_every_message_is_delivered_exactly_once(lanes: TaskLanes, settings: Any) -> None:
    settings.TASKS_READY_DEPTH = 3
    settings.TASKS_TENANT_CONCURRENCY = 2
    tenants = [str(uuid.uuid4()) for _ in range(5)]
    sent = []
    for n in range(40):
        tenant = tenants[(n * 7) % 5]
        lanes.enqueue(tenant, message(tenant, f"m{n}"))
        sent.append(f"m{n}")
        if n % 3 == 0:  # a worker takes one now and then, between publishes
            headers = take(lanes)
            assert headers is not None
            lanes.finished(headers["tenant_id"], member(headers))
            sent.remove(headers["label"])

    assert Counter(run_all(lanes)) == Counter(sent)
    stats = lanes.stats()
    assert (stats.pending, stats.ready, stats.waiting_tenants, stats.capped_tenants) == (0, 0, 0, 0)


def test_a_tenant_never_holds_more_slots_than_its_cap(lanes: TaskLanes, settings: Any) -> None:
    settings.TASKS_READY_DEPTH = 10
    settings.TASKS_TENANT_CONCURRENCY = 2
    tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
    for n in range(6):
        lanes.enqueue(tenant_a, message(tenant_a, f"a{n}"))

    assert lanes.client.llen(lanes.ready) == 2
    assert lanes.running(tenant_a) == 2
    assert lanes.stats().capped_tenants == 1
    # another tenant is not held back by A's cap
    lanes.enqueue(tenant_b, message(tenant_b, "b"))
    assert lanes.client.llen(lanes.ready) == 3

    # when one of A's finishes, exactly one more of A's is dispatched
    first = take(lanes)
    assert first is not None
    assert first["label"] == "a0"
    lanes.finished(tenant_a, member(first))
    assert lanes.running(tenant_a) == 2
    assert [json.loads(m)["headers"]["label"] for m in lanes.lane(tenant_a)] == ["a3", "a4", "a5"]


def test_the_cap_a_worker_learned_from_the_plan_applies(lanes: TaskLanes, settings: Any) -> None:
    settings.TASKS_READY_DEPTH = 10
    tenant = str(uuid.uuid4())
    lanes.enqueue(tenant, message(tenant, "first"))
    first = take(lanes)
    assert first is not None
    lanes.started(tenant, member(first), lease_seconds=60, cap=1)  # its plan allows one

    for n in range(3):
        lanes.enqueue(tenant, message(tenant, f"more{n}"))

    assert lanes.client.llen(lanes.ready) == 0
    lanes.finished(tenant, member(first))
    assert lanes.client.llen(lanes.ready) == 1


def test_a_dead_workers_slot_comes_back_when_its_lease_expires(
    lanes: TaskLanes, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TASKS_READY_DEPTH = 10
    settings.TASKS_TENANT_CONCURRENCY = 1
    tenant = str(uuid.uuid4())
    lanes.enqueue(tenant, message(tenant, "lost"))
    lanes.enqueue(tenant, message(tenant, "next"))
    assert take(lanes) is not None  # started, then its worker died: no finish ever comes
    assert lanes.client.llen(lanes.ready) == 0

    later = lanes_module.now_ms() + 61_000
    monkeypatch.setattr(lanes_module, "now_ms", lambda: later)
    lanes.tick()

    assert [json.loads(m)["headers"]["label"] for m in lanes.client.lrange(lanes.ready, 0, -1)] == [
        "next"
    ]


def test_a_task_with_an_eta_waits_in_redis_not_in_a_slot(
    lanes: TaskLanes, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TASKS_READY_DEPTH = 10
    tenant = str(uuid.uuid4())
    due = lanes_module.now_ms() / 1000 + 300
    lanes.enqueue(tenant, message(tenant, "retry"), eta=due)

    stats = lanes.stats()
    assert (stats.delayed, stats.pending, stats.ready, lanes.running(tenant)) == (1, 0, 0, 0)

    monkeypatch.setattr(lanes_module, "now_ms", lambda: int(due * 1000) + 1)
    lanes.tick()

    assert lanes.stats().delayed == 0
    assert [json.loads(m)["headers"]["label"] for m in lanes.client.lrange(lanes.ready, 0, -1)] == [
        "retry"
    ]


def test_dropping_one_tenants_tasks_leaves_the_others(lanes: TaskLanes) -> None:
    tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
    for n in range(3):
        lanes.enqueue(tenant_a, message(tenant_a, f"a{n}"))
        lanes.enqueue(tenant_b, message(tenant_b, f"b{n}"))
    lanes.enqueue(tenant_a, message(tenant_a, "a-later"), eta=lanes_module.now_ms() / 1000 + 60)
    lanes.enqueue(tenant_b, message(tenant_b, "b-later"), eta=lanes_module.now_ms() / 1000 + 60)

    # one message is already ready (depth 1): A's first; A's two others and its delayed go
    assert lanes.drop(tenant_a) == 3

    assert lanes.lane(tenant_a) == []
    assert len(lanes.lane(tenant_b)) == 3
    assert lanes.stats().delayed == 1
    assert [label for label in run_all(lanes)] == ["a0", "b0", "b1", "b2"]


def test_publishing_puts_a_tenant_task_in_its_own_lane_only(
    lanes: TaskLanes, tenant_a: Tenant, tenant_b: Tenant, settings: Any
) -> None:
    import tests.celery_probe  # noqa: F401  (registers the probe tasks)

    with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        with tenant_context(tenant_a):
            for n in range(3):
                publish_on(connection, "probe.where_am_i", key=f"k{n}")
        publish_on(connection, "probe.platform_record", key="platform", label="p")

    ready = [json.loads(m)["headers"] for m in lanes.client.lrange(TENANT_QUEUE, 0, -1)]
    in_lane = [json.loads(m)["headers"] for m in lanes.lane(str(tenant_a.id))]
    assert [h["tenant_id"] for h in ready + in_lane] == [str(tenant_a.id)] * 3
    assert lanes.lane(str(tenant_b.id)) == []
    platform = [
        json.loads(m)["headers"]["task"] for m in lanes.client.lrange(PLATFORM_QUEUE, 0, -1)
    ]
    assert platform == ["probe.platform_record"]


def test_a_countdown_waits_in_redis_until_it_is_due(
    lanes: TaskLanes, tenant_a: Tenant, settings: Any
) -> None:
    import tests.celery_probe  # noqa: F401

    with (
        app.connection_for_write(settings.CELERY_BROKER_URL) as connection,
        tenant_context(tenant_a),
    ):
        publish_on(connection, "probe.where_am_i", options={"countdown": 300}, key="later")

    stats = lanes.stats()
    assert (stats.delayed, stats.pending, stats.ready) == (1, 0, 0)
    assert lanes.running(str(tenant_a.id)) == 0


def test_first_come_first_served_when_fairness_is_off(
    lanes: TaskLanes, tenant_a: Tenant, settings: Any
) -> None:
    import tests.celery_probe  # noqa: F401

    settings.TASKS_FAIR_SCHEDULING = False
    with (
        app.connection_for_write(settings.CELERY_BROKER_URL) as connection,
        tenant_context(tenant_a),
    ):
        for n in range(3):
            publish_on(connection, "probe.where_am_i", key=f"k{n}")

    assert lanes.client.llen(TENANT_QUEUE) == 3
    assert lanes.lane(str(tenant_a.id)) == []


def test_a_workspaces_concurrency_is_its_plans(tenant_a: Tenant) -> None:
    from shared_apps.billing.models import Plan

    lanes_module._concurrency_cache.clear()
    Plan.objects.filter(is_default=True).update(max_concurrent_tasks=3)
    try:
        assert tenant_concurrency(str(tenant_a.id)) == 3
    finally:
        lanes_module._concurrency_cache.clear()


def test_lane_metrics_count_workspaces_without_naming_them(lanes: TaskLanes, settings: Any) -> None:
    from tenancy.lanes import task_lane_metrics

    settings.TASKS_TENANT_CONCURRENCY = 1
    tenants = [str(uuid.uuid4()) for _ in range(3)]
    for tenant in tenants:
        for n in range(2):
            lanes.enqueue(tenant, message(tenant, f"{tenant}{n}"))

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in task_lane_metrics()
        for sample in family.samples
    }

    # depth 1: one task ready, five in the lanes of three workspaces waiting for a turn
    assert samples[("platform_task_lane_pending", ())] == 5
    assert samples[("platform_task_lane_tenants", (("state", "waiting"),))] == 3
    assert samples[("platform_task_lane_tenants", (("state", "capped"),))] == 0
    assert samples[("platform_task_queue_messages", (("queue", "tenants"),))] == 1
    assert all(set(dict(labels)) <= {"state", "queue"} for _, labels in samples)


def test_each_queue_has_an_exchange_and_key_of_its_own() -> None:
    queues = {q.name: (q.exchange.name, q.routing_key) for q in app.amqp.queues.values()}

    # one shared binding would deliver a message sent to one exchange to every queue
    assert queues == {name: (name, name) for name in (TENANT_QUEUE, PLATFORM_QUEUE, "default")}


def test_the_lanes_survive_a_redis_that_forgot_their_script(lanes: TaskLanes) -> None:
    tenant = str(uuid.uuid4())
    lanes.client.script_flush()  # as after a Redis restart

    lanes.enqueue(tenant, message(tenant, "after restart"))

    assert run_all(lanes) == ["after restart"]
