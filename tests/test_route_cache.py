"""Host → tenant resolution costs no query once warm and notices changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tenancy.host_routes import HostRoutes, routes_changed
from tests.factories import DomainFactory


def _connection_on_public() -> None:
    """Start from a connection already on public, as a worker that served the root host."""
    with public_context():
        Tenant.objects.exists()


def test_warm_tenant_request_costs_no_query(
    client_a: Client, django_assert_num_queries: Callable[..., Any]
) -> None:
    _connection_on_public()
    with django_assert_num_queries(1) as cold:  # one look-up: domain joined with tenant
        assert client_a.get("/robots.txt").status_code == 200
    assert "tenants_domain" in cold.captured_queries[0]["sql"]

    with django_assert_num_queries(0):
        assert client_a.get("/robots.txt").status_code == 200


def test_warm_public_request_costs_no_query(
    public_client: Client, django_assert_num_queries: Callable[..., Any]
) -> None:
    with django_assert_num_queries(0):  # the root host never needs a look-up
        assert public_client.get("/").status_code == 200


def test_new_domain_is_routed_without_waiting(client_a: Client, tenant_a: Tenant) -> None:
    alias = Client(HTTP_HOST="alpha-alias.localhost")
    assert alias.get("/login/").status_code == 404  # remembered as unknown
    with public_context():
        DomainFactory.create(domain="alpha-alias.localhost", tenant=tenant_a, is_primary=False)
    assert alias.get("/login/").status_code == 200


def test_other_processes_drop_their_copy_when_version_moves(
    tenant_a: Tenant,
    settings: Any,
    django_assert_num_queries: Callable[..., Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # given: another process's warm copy that rechecks the shared version every request
    settings.TENANT_ROUTE_RECHECK_SECONDS = 0
    other_process = HostRoutes()
    _connection_on_public()
    other_process.resolve("alpha.localhost")
    with django_assert_num_queries(0):
        assert other_process.resolve("alpha.localhost").tenant is not None

    # when: this process changes a tenant and the change commits
    with django_capture_on_commit_callbacks(execute=True):
        routes_changed()

    # then: the other process reloads once, and sees the current row
    with django_assert_num_queries(1):
        route = other_process.resolve("alpha.localhost")
    assert route.tenant is not None
    assert route.tenant.subdomain == "alpha"


@pytest.mark.parametrize("hosts", [1, 50])
def test_unknown_hosts_are_remembered_without_repeat_queries(
    db: None, hosts: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    routes = HostRoutes()
    _connection_on_public()
    with django_assert_num_queries(hosts):
        for _ in range(3):
            for n in range(hosts):
                assert routes.resolve(f"ghost{n}.localhost").tenant is None


def test_a_full_map_forgets_only_its_oldest_host(
    tenant_a: Tenant,
    tenant_b: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    # given: room for two known hosts, both taken
    monkeypatch.setattr("tenancy.host_routes.MAX_KNOWN_HOSTS", 2)
    routes = HostRoutes()
    _connection_on_public()
    routes.resolve("alpha.localhost")
    routes.resolve("beta.localhost")
    with public_context():
        DomainFactory.create(domain="beta-alias.localhost", tenant=tenant_b, is_primary=False)

    # when: a third host is looked up
    with django_assert_num_queries(1):
        routes.resolve("beta-alias.localhost")

    # then: the second stays warm, only the oldest costs a query again
    with django_assert_num_queries(0):
        assert routes.resolve("beta.localhost").tenant is not None
        assert routes.resolve("beta-alias.localhost").tenant is not None
    with django_assert_num_queries(1):
        assert routes.resolve("alpha.localhost").tenant is not None


def test_a_flood_of_unknown_hosts_never_pushes_a_tenant_out(
    tenant_a: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    monkeypatch.setattr("tenancy.host_routes.MAX_UNKNOWN_HOSTS", 3)
    routes = HostRoutes()
    _connection_on_public()
    routes.resolve("alpha.localhost")
    with django_assert_num_queries(20):  # each random host once; the map of them stays small
        for n in range(20):
            assert routes.resolve(f"random{n}.localhost").tenant is None
    with django_assert_num_queries(0):
        assert routes.resolve("alpha.localhost").tenant is not None
        assert routes.resolve("random19.localhost").tenant is None
