"""The API's request budgets: per key, per person, per workspace (its plan), per address for
callers without credentials; RateLimit fields on every answer; exact under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from core.api.limits import Budget, budgets_count
from shared_apps.billing.models import Plan
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.apikeys.tests.helpers import bearer, key_in
from tests.factories import ProjectFactory

PROBLEM = "application/problem+json"
PROJECTS = "/api/v1/projects"


def limits(settings: Any, **given: int) -> None:
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, **given}


def free_plan_allows(per_minute: int | None) -> None:
    with public_context():
        Plan.objects.filter(is_default=True).update(api_requests_per_minute=per_minute)


def statuses(client: Client, times: int, **headers: str) -> list[int]:
    return [client.get(PROJECTS, headers=headers).status_code for _ in range(times)]


# HEADERS --------------------------------------------------------------------------------


def test_every_answer_carries_the_ratelimit_fields(
    client_a: Client, tenant_a: Tenant, settings: Any
) -> None:
    limits(settings, key=50)
    free_plan_allows(1000)
    _, plaintext = key_in(tenant_a, scopes=["read"])

    listed = client_a.get(PROJECTS, headers=bearer(plaintext))
    missing = client_a.get(f"{PROJECTS}/999999", headers=bearer(plaintext))
    refused = client_a.post(
        PROJECTS, {}, content_type="application/json", headers=bearer(plaintext)
    )

    assert (listed.status_code, missing.status_code, refused.status_code) == (200, 404, 403)
    # the key's budget is the one closest to running out: 50, of which 3 are spent
    assert [r["RateLimit-Remaining"] for r in (listed, missing, refused)] == ["49", "48", "47"]
    assert listed["RateLimit-Limit"] == "50"
    assert 0 < int(listed["RateLimit-Reset"]) <= 60
    assert listed["RateLimit-Policy"] == ('50;w=60;comment="key", 1000;w=60;comment="workspace"')


def test_a_401_carries_the_fields_of_the_address_budget(client_a: Client, settings: Any) -> None:
    limits(settings, address=7)
    response = client_a.get(PROJECTS)
    assert response.status_code == 401
    assert (response["RateLimit-Limit"], response["RateLimit-Remaining"]) == ("7", "6")


def test_an_unlimited_plan_still_names_the_key_budget(
    client_a: Client, tenant_a: Tenant, settings: Any
) -> None:
    limits(settings, key=5)
    free_plan_allows(None)
    _, plaintext = key_in(tenant_a, scopes=["read"])
    response = client_a.get(PROJECTS, headers=bearer(plaintext))
    assert response["RateLimit-Policy"] == '5;w=60;comment="key"'


# REFUSALS -------------------------------------------------------------------------------


def test_a_key_past_its_budget_gets_a_429_problem_with_retry_after(
    client_a: Client, tenant_a: Tenant, settings: Any
) -> None:
    limits(settings, key=3)
    _, plaintext = key_in(tenant_a, scopes=["read"])

    answers = [client_a.get(PROJECTS, headers=bearer(plaintext)) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused["Content-Type"] == PROBLEM
    body = refused.json()
    assert body["code"] == "throttled"
    assert body["detail"].startswith("This API key's budget of 3 requests a minute is spent")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert (refused["RateLimit-Limit"], refused["RateLimit-Remaining"]) == ("3", "0")
    assert refused["RateLimit-Reset"] == refused["Retry-After"]


def test_each_key_has_its_own_budget(client_a: Client, tenant_a: Tenant, settings: Any) -> None:
    limits(settings, key=2)
    _, first = key_in(tenant_a, scopes=["read"])
    _, second = key_in(tenant_a, scopes=["read"])
    assert statuses(client_a, 3, **bearer(first)) == [200, 200, 429]
    assert statuses(client_a, 2, **bearer(second)) == [200, 200]


def test_a_person_signed_in_has_a_budget_apart_from_their_keys(
    owner_a: Client, tenant_a: Tenant, settings: Any
) -> None:
    limits(settings, user=2, key=100)
    _, plaintext = key_in(tenant_a, scopes=["read"])  # made by the same owner
    assert statuses(owner_a, 3) == [200, 200, 429]
    assert (
        owner_a.get(PROJECTS)
        .json()["detail"]
        .startswith("Your budget of 2 API requests a minute is spent")
    )
    assert statuses(owner_a, 1, **bearer(plaintext)) == [200]


def test_the_workspace_budget_comes_from_its_plan_and_binds_every_credential(
    owner_a: Client, client_a: Client, tenant_a: Tenant, settings: Any
) -> None:
    limits(settings, key=100, user=100)
    free_plan_allows(3)
    _, plaintext = key_in(tenant_a, scopes=["read"])

    assert statuses(client_a, 2, **bearer(plaintext)) == [200, 200]
    assert statuses(owner_a, 2) == [200, 429]
    refused = owner_a.get(PROJECTS)
    assert refused.json()["detail"].startswith(
        "This workspace's plan allows 3 API requests a minute, all spent"
    )
    assert refused["RateLimit-Limit"] == "3"


def test_the_plan_is_read_once_then_trusted_for_a_minute(
    owner_a: Client,
    tenant_a: Tenant,
    settings: Any,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    free_plan_allows(500)
    owner_a.get(PROJECTS)  # reads the plan
    free_plan_allows(1)
    # search path, session, user, the page of projects: no plan query, the cached budget holds
    with django_assert_num_queries(4):
        response = owner_a.get(PROJECTS)
    assert (response.status_code, response["RateLimit-Limit"]) == (200, "500")


def test_workspace_a_spending_its_budget_does_not_throttle_b(
    tenant_a: Tenant, tenant_b: Tenant, client_a: Client, client_b: Client, settings: Any
) -> None:
    limits(settings, key=100)
    free_plan_allows(3)  # both are on the free plan: the same budget, counted apart
    _, key_a = key_in(tenant_a, scopes=["read"])
    _, key_b = key_in(tenant_b, scopes=["read"])

    assert statuses(client_a, 4, **bearer(key_a)) == [200, 200, 200, 429]
    assert statuses(client_b, 3, **bearer(key_b)) == [200, 200, 200]


def test_the_counters_are_named_by_workspace(tenant_a: Tenant, tenant_b: Tenant) -> None:
    budget = Budget("key", "1", 10)
    with tenant_context(tenant_a):
        budgets_count([budget])
        budgets_count([budget])
        (in_a,) = budgets_count([budget])
    with tenant_context(tenant_b):
        (in_b,) = budgets_count([budget])
    assert (in_a.count, in_b.count) == (3, 1)


def test_a_counter_that_lost_its_expiry_gets_it_back(tenant_a: Tenant) -> None:
    from core.api.limits import _key, _redis

    budget = Budget("key", "no-expiry", 10)
    with tenant_context(tenant_a):
        _redis().set(_key(budget.key), 5)  # no TTL: it would never reopen
        (usage,) = budgets_count([budget])
        assert usage.count == 6
        assert 0 < _redis().ttl(_key(budget.key)) <= 60


# CALLERS WITHOUT CREDENTIALS ------------------------------------------------------------


def test_requests_without_credentials_count_against_the_address_not_the_workspace(
    owner_a: Client, tenant_a: Tenant, settings: Any
) -> None:
    limits(settings, address=2, user=100)
    free_plan_allows(3)
    stranger = Client(HTTP_HOST="alpha.localhost", REMOTE_ADDR="198.51.100.7")

    assert statuses(stranger, 3) == [401, 401, 429]
    assert (
        stranger.get(PROJECTS)
        .json()["detail"]
        .startswith("Too many requests from this address without valid credentials")
    )
    # the workspace's own budget is untouched by the stranger
    assert statuses(owner_a, 3) == [200, 200, 200]


def test_guessing_keys_is_throttled_by_address(client_a: Client, settings: Any) -> None:
    limits(settings, address=2)
    guesses = [
        client_a.get(PROJECTS, headers=bearer(f"tp_guess{n:03d}_secret")).status_code
        for n in range(3)
    ]
    assert guesses == [401, 401, 429]


def test_a_forged_forwarded_for_does_not_buy_a_new_budget(tenant_a: Tenant, settings: Any) -> None:
    limits(settings, address=2)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    client = Client(HTTP_HOST="alpha.localhost", REMOTE_ADDR="198.51.100.8")
    codes = [
        client.get(PROJECTS, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(3)
    ]
    assert codes == [401, 401, 429]


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(
    tenant_a: Tenant, settings: Any
) -> None:
    limits(settings, address=1)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = Client(HTTP_HOST="alpha.localhost", REMOTE_ADDR="10.0.0.2")

    def through_proxy(client_address: str, spoofed: str = "192.0.2.1") -> int:
        # a client may write its own X-Forwarded-For; the proxy appends what it saw
        forwarded = f"{spoofed}, {client_address}"
        return proxy.get(PROJECTS, HTTP_X_FORWARDED_FOR=forwarded).status_code

    assert [through_proxy("203.0.113.5"), through_proxy("203.0.113.5", "192.0.2.2")] == [401, 429]
    assert through_proxy("203.0.113.6") == 401


# CONCURRENCY ----------------------------------------------------------------------------


def _run_at_once(threads: int, work: Callable[[], Any]) -> list[Any]:
    results: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run() -> None:
        try:
            start.wait()
            outcome = work()
            with lock:
                results.append(outcome)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


def test_concurrent_counting_is_exact(tenant_a: Tenant) -> None:
    budget = Budget("key", "concurrency", 25)

    def count_once() -> bool:
        with tenant_context(tenant_a):
            (usage,) = budgets_count([budget])
        return usage.is_exceeded

    refused = _run_at_once(40, count_once)

    assert (refused.count(False), refused.count(True)) == (25, 15)
    with tenant_context(tenant_a):
        (after,) = budgets_count([budget])
    assert after.count == 41


def test_concurrent_requests_are_admitted_exactly_up_to_the_budget(
    tenant_a: Tenant, settings: Any
) -> None:
    # Requests without credentials: each thread's own connection sees the committed tenant,
    # and no row of this test's transaction is needed.
    limits(settings, address=12)

    def one_request() -> int:
        client = Client(HTTP_HOST="alpha.localhost", REMOTE_ADDR="198.51.100.9")
        return int(client.get(PROJECTS).status_code)

    codes = _run_at_once(20, one_request)

    assert (codes.count(401), codes.count(429)) == (12, 8)


def test_a_project_list_costs_no_query_for_its_budgets(
    owner_a: Client, tenant_a: Tenant, django_assert_num_queries: Callable[..., Any]
) -> None:
    with tenant_context(tenant_a):
        ProjectFactory.create()
    owner_a.get(PROJECTS)  # warm: the route and the plan's budget are cached after this
    with django_assert_num_queries(4):
        assert owner_a.get(PROJECTS).status_code == 200


@pytest.mark.parametrize("method", ["options", "head"])
def test_other_methods_are_counted_too(owner_a: Client, settings: Any, method: str) -> None:
    limits(settings, user=1)
    assert getattr(owner_a, method)(PROJECTS).status_code == 200
    assert getattr(owner_a, method)(PROJECTS).status_code == 429
