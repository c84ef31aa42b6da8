"""Idempotency-Key on every POST of the workspace API: replay, refusal, one run at a time,
server errors kept out, and one workspace's keys invisible to another."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.apikeys.tests.helpers import bearer, key_in
from tenant_apps.idempotency.models import IdempotencyRecord
from tenant_apps.idempotency.services import idempotency_records_clear
from tenant_apps.idempotency.tasks import idempotency_records_clear_task
from tenant_apps.projects.models import Project
from tests.factories import ProjectFactory
from tests.fixtures import TENANT_B, browser_for, in_own_connection

PROBLEM = "application/problem+json"
PROJECTS = "/api/v1/projects"


def post(
    client: Client, body: dict[str, Any], key: str | None, path: str = PROJECTS, **headers: str
) -> Any:
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(path, body, content_type="application/json", headers=headers)


def projects(tenant: Tenant) -> list[str]:
    with tenant_context(tenant):
        return list(Project.objects.order_by("pk").values_list("name", flat=True))


def records(tenant: Tenant) -> int:
    with tenant_context(tenant):
        return IdempotencyRecord.objects.count()


# REPLAY ---------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_replays_the_first_answer(
    owner_a: Client, tenant_a: Tenant
) -> None:
    first = post(owner_a, {"name": "Apollo"}, "retry-1")
    again = post(owner_a, {"name": "Apollo"}, "retry-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert projects(tenant_a) == ["Apollo"]


def test_a_retry_by_api_key_replays_and_gets_fresh_ratelimit_fields(
    client_a: Client, tenant_a: Tenant
) -> None:
    _, plaintext = key_in(tenant_a, scopes=["write"])
    first = post(client_a, {"name": "Apollo"}, "ci-run-7", **bearer(plaintext))
    again = post(client_a, {"name": "Apollo"}, "ci-run-7", **bearer(plaintext))

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert int(again["RateLimit-Remaining"]) == int(first["RateLimit-Remaining"]) - 1
    assert projects(tenant_a) == ["Apollo"]


def test_a_key_sent_as_a_structured_field_string_is_the_same_key(
    owner_a: Client, tenant_a: Tenant
) -> None:
    post(owner_a, {"name": "Apollo"}, '"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    again = post(owner_a, {"name": "Apollo"}, "8e03978e-40d5-43e8-bc93-6894a57f9324")
    assert again["Idempotent-Replayed"] == "true"
    assert projects(tenant_a) == ["Apollo"]


def test_the_same_body_in_another_key_order_is_the_same_request(
    owner_a: Client, tenant_a: Tenant
) -> None:
    post(owner_a, {"name": "Apollo", "description": "Moon"}, "order")
    again = post(owner_a, {"description": "Moon", "name": "Apollo"}, "order")
    assert (again.status_code, again["Idempotent-Replayed"]) == (201, "true")


def test_a_refusal_is_replayed_too(owner_a: Client, tenant_a: Tenant) -> None:
    first = post(owner_a, {"name": "Apollo", "colour": "red"}, "typo")
    with tenant_context(tenant_a):
        archived = ProjectFactory.create(status=Project.Status.ARCHIVED)
    tasks = f"{PROJECTS}/{archived.pk}/tasks"
    conflict = post(owner_a, {"title": "Launch"}, "late", path=tasks)
    with tenant_context(tenant_a):
        Project.objects.filter(pk=archived.pk).update(status=Project.Status.ACTIVE)

    again = post(owner_a, {"name": "Apollo", "colour": "red"}, "typo")
    conflict_again = post(owner_a, {"title": "Launch"}, "late", path=tasks)

    assert (first.status_code, again.status_code) == (400, 400)
    assert again["Content-Type"] == PROBLEM
    assert again.json() == first.json()
    # the project is active now, but this key's answer was given: the retry gets it again
    assert (conflict.status_code, conflict_again.status_code) == (409, 409)
    assert conflict_again.json()["code"] == "project_archived"
    assert conflict_again["Idempotent-Replayed"] == "true"


def test_a_refusal_quoting_a_nul_is_kept_and_replayed(owner_a: Client, tenant_a: Tenant) -> None:
    # The validation problem names the unknown field, NUL included: kept as JSON text, since
    # PostgreSQL's jsonb refuses \u0000 (found by the contract test).
    body = {"name": "Apollo", "na\x00me": "x"}
    first = post(owner_a, body, "nul")
    again = post(owner_a, body, "nul")
    assert (first.status_code, again.status_code) == (400, 400)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"


def test_without_a_key_every_post_runs(owner_a: Client, tenant_a: Tenant) -> None:
    post(owner_a, {"name": "Apollo"}, None)
    post(owner_a, {"name": "Apollo"}, None)
    assert projects(tenant_a) == ["Apollo", "Apollo"]
    assert records(tenant_a) == 0


def test_other_methods_ignore_the_key(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Apollo")
    path = f"{PROJECTS}/{project.pk}"
    for name in ("Gemini", "Mercury"):
        owner_a.patch(
            path, {"name": name}, content_type="application/json", headers={"Idempotency-Key": "k"}
        )
    assert projects(tenant_a) == ["Mercury"]
    assert records(tenant_a) == 0


# REFUSALS -------------------------------------------------------------------------------


def test_the_same_key_for_another_body_is_refused(owner_a: Client, tenant_a: Tenant) -> None:
    post(owner_a, {"name": "Apollo"}, "once")
    reused = post(owner_a, {"name": "Gemini"}, "once")

    assert (reused.status_code, reused["Content-Type"]) == (409, PROBLEM)
    assert reused.json()["code"] == "idempotency_key_reused"
    assert projects(tenant_a) == ["Apollo"]


def test_the_same_key_on_another_endpoint_is_refused(owner_a: Client, tenant_a: Tenant) -> None:
    created = post(owner_a, {"name": "Apollo"}, "once").json()
    reused = post(owner_a, {"title": "x"}, "once", path=f"{PROJECTS}/{created['id']}/tasks")
    assert reused.json()["code"] == "idempotency_key_reused"


@pytest.mark.parametrize("key", ["", "with space", "ü", "x" * 256])
def test_a_malformed_key_is_refused_before_anything_runs(
    owner_a: Client, tenant_a: Tenant, key: str
) -> None:
    response = post(owner_a, {"name": "Apollo"}, key)
    assert (response.status_code, response["Content-Type"]) == (400, PROBLEM)
    assert response.json()["code"] == "idempotency_key_invalid"
    assert projects(tenant_a) == []


def test_a_key_is_bound_to_its_credential(
    owner_a: Client, client_a: Client, tenant_a: Tenant
) -> None:
    _, plaintext = key_in(tenant_a, scopes=["write"])
    by_session = post(owner_a, {"name": "Apollo"}, "shared")
    by_key = post(client_a, {"name": "Apollo"}, "shared", **bearer(plaintext))

    assert (by_session.status_code, by_key.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in by_key
    assert projects(tenant_a) == ["Apollo", "Apollo"]


def test_a_day_later_the_key_is_free_again(owner_a: Client, tenant_a: Tenant) -> None:
    post(owner_a, {"name": "Apollo"}, "daily")
    with tenant_context(tenant_a):
        IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24))

    again = post(owner_a, {"name": "Gemini"}, "daily")

    assert (again.status_code, again.json()["name"]) == (201, "Gemini")
    assert records(tenant_a) == 1


# SERVER ERRORS --------------------------------------------------------------------------


def test_a_server_error_is_not_kept_and_the_retry_runs(owner_a: Client, tenant_a: Tenant) -> None:
    with mock.patch(
        "tenant_apps.projects.api.views.project_create", side_effect=RuntimeError("disk full")
    ):
        failed = post(owner_a, {"name": "Apollo"}, "flaky")
    retried = post(owner_a, {"name": "Apollo"}, "flaky")

    assert (failed.status_code, failed.json()["code"]) == (500, "internal_error")
    assert "Idempotent-Replayed" not in retried
    assert retried.status_code == 201
    assert projects(tenant_a) == ["Apollo"]


def test_the_record_commits_with_the_work_or_not_at_all(owner_a: Client, tenant_a: Tenant) -> None:
    # A failure after the handler (here: writing the record) takes the handler's writes
    # with it, so a retry finds neither a project nor a record, and runs once more.
    with mock.patch(
        "tenant_apps.idempotency.services.IdempotencyRecord.objects.create",
        side_effect=RuntimeError("connection lost"),
    ):
        failed = post(owner_a, {"name": "Apollo"}, "atomic")
    assert failed.status_code == 500
    assert projects(tenant_a) == []
    assert post(owner_a, {"name": "Apollo"}, "atomic").status_code == 201
    assert projects(tenant_a) == ["Apollo"]


# CONCURRENCY ----------------------------------------------------------------------------


@pytest.fixture
def committed_key(tenant_a: Tenant) -> Iterator[str]:
    """A write key committed in tenant A, seen by every connection; removed afterwards with
    whatever the requests committed."""
    made: list[tuple[ApiKey, str]] = []
    in_own_connection(lambda: made.append(key_in(tenant_a, scopes=["write"])))
    key, plaintext = made[0]
    yield plaintext

    def forget() -> None:
        Project.objects.filter(name__startswith="Concurrent").delete()
        IdempotencyRecord.objects.all().delete()
        ApiKey.objects.filter(pk=key.pk).delete()

    in_own_connection(forget, tenant_a)


def _in_thread(work: Callable[[], Any], into: list[Any]) -> threading.Thread:
    def run() -> None:
        try:
            into.append(work())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_two_requests_with_one_key_at_once_run_once(tenant_a: Tenant, committed_key: str) -> None:
    from tenant_apps.projects import services

    started, release = threading.Event(), threading.Event()
    real_create = services.project_create

    def slow_create(**kwargs: Any) -> Project:
        started.set()
        assert release.wait(10)
        return real_create(**kwargs)

    def send() -> Any:
        client = Client(HTTP_HOST="alpha.localhost")
        return post(client, {"name": "Concurrent"}, "at-once", **bearer(committed_key))

    first: list[Any] = []
    second: list[Any] = []
    with mock.patch("tenant_apps.projects.api.views.project_create", side_effect=slow_create):
        running = _in_thread(send, first)
        assert started.wait(10)
        # the first holds the key, inside its handler: the second is refused at once
        _in_thread(send, second).join(10)
        release.set()
        running.join(10)

    assert first[0].status_code == 201
    refused = second[0]
    assert (refused.status_code, refused.json()["code"]) == (409, "idempotency_key_in_progress")
    assert refused["Retry-After"] == "1"
    # once the first has finished, a retry gets its answer
    after: list[Any] = []
    _in_thread(send, after).join(10)
    assert (after[0].status_code, after[0]["Idempotent-Replayed"]) == (201, "true")
    assert after[0].json()["id"] == first[0].json()["id"]
    assert projects(tenant_a) == ["Concurrent"]


# ISOLATION ------------------------------------------------------------------------------


def test_a_key_of_workspace_a_is_invisible_to_b(
    owner_a: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    # Both owners are user 1 of their schema: the same credential string, the same key.
    with tenant_context(tenant_b):
        owner_b = browser_for(tenant_b, User.objects.get(email=TENANT_B.owner_email))
    in_a = post(owner_a, {"name": "A's"}, "same-string")
    in_b = post(owner_b, {"name": "B's"}, "same-string")

    assert (in_a.status_code, in_b.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in in_b
    assert in_b.json()["name"] == "B's"
    assert (projects(tenant_a), projects(tenant_b)) == (["A's"], ["B's"])
    assert (records(tenant_a), records(tenant_b)) == (1, 1)


# CLEARING -------------------------------------------------------------------------------


def test_records_older_than_a_day_are_cleared(owner_a: Client, tenant_a: Tenant) -> None:
    post(owner_a, {"name": "Old"}, "old")
    post(owner_a, {"name": "New"}, "new")
    with tenant_context(tenant_a):
        IdempotencyRecord.objects.filter(idempotency_key="old").update(
            created_at=timezone.now() - timedelta(hours=25)
        )
        assert idempotency_records_clear() == 1
        idempotency_records_clear_task()  # nothing left to clear; the task says so in its log
        assert list(IdempotencyRecord.objects.values_list("idempotency_key", flat=True)) == ["new"]


# QUERIES --------------------------------------------------------------------------------


def test_a_replay_runs_no_handler_query(
    owner_a: Client, tenant_a: Tenant, django_assert_num_queries: Callable[..., Any]
) -> None:
    post(owner_a, {"name": "Apollo"}, "counted")
    # search path, session, user, then the key's transaction (a savepoint inside the test's
    # own: SAVEPOINT, RELEASE where production has BEGIN, COMMIT) with its lock and record.
    # The handler does not run.
    with django_assert_num_queries(7) as captured:
        again = post(owner_a, {"name": "Apollo"}, "counted")
    assert again["Idempotent-Replayed"] == "true"
    assert "pg_try_advisory_xact_lock" in captured.captured_queries[4]["sql"]


def test_a_key_costs_three_queries_around_the_handler(
    owner_a: Client, tenant_a: Tenant, django_assert_num_queries: Callable[..., Any]
) -> None:
    post(owner_a, {"name": "Warm"}, None)  # warm: route, plan budget, dashboard cache
    with CaptureQueriesContext(connection) as plain:
        post(owner_a, {"name": "Plain"}, None)
    with CaptureQueriesContext(connection) as keyed:
        post(owner_a, {"name": "Keyed"}, "fresh")
    # the lock, the look-up and the record, plus the savepoint pair of the transaction
    assert len(keyed.captured_queries) - len(plain.captured_queries) == 3 + 2
