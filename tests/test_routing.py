"""Requests reach the public site, the right tenant, or a friendly 404, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client

from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tests.factories import TEST_PASSWORD
from tests.fixtures import TENANT_A, sign_in


def test_root_host_serves_landing_page(public_client: Client) -> None:
    response = public_client.get("/")
    assert response.status_code == 200
    assert b"Your team's workspace" in response.content


def test_health_endpoint_reports_database_and_cache(public_client: Client) -> None:
    response = public_client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


def test_tenant_host_serves_its_login_page(client_a: Client) -> None:
    response = client_a.get("/login/")
    assert response.status_code == 200
    assert b"Sign in to Alpha Inc" in response.content


def test_tenant_home_sends_anonymous_visitor_to_login(client_a: Client) -> None:
    response = client_a.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_owner_signs_in_and_sees_home(client_a: Client) -> None:
    response = sign_in(client_a, "OWNER@alpha.test", TEST_PASSWORD)
    assert response.status_code == 302
    home = client_a.get("/")
    assert home.status_code == 200
    assert b"Welcome to Alpha Inc" in home.content
    assert b"owner@alpha.test" in home.content


@pytest.mark.parametrize("host", ["nobody.localhost", "deep.nobody.localhost"])
def test_unknown_subdomain_gets_friendly_404(db: None, host: str) -> None:
    response = Client(HTTP_HOST=host).get("/login/")
    assert response.status_code == 404
    assert b"There is no workspace here" in response.content


def test_host_outside_root_domain_is_refused(db: None) -> None:
    response = Client(HTTP_HOST="evil.example").get("/")
    assert response.status_code == 400


def test_host_with_port_and_capitals_routes_to_tenant(tenant_a: Tenant) -> None:
    response = Client(HTTP_HOST="ALPHA.localhost:8000").get("/login/")
    assert response.status_code == 200
    assert b"Alpha Inc" in response.content


def test_suspended_tenant_shows_suspended_page_not_its_data(
    client_a: Client, tenant_a: Tenant
) -> None:
    assert client_a.get("/login/").status_code == 200  # route is now warm
    with public_context():
        tenant = Tenant.objects.get(pk=tenant_a.pk)
        tenant.status = Tenant.Status.SUSPENDED
        tenant.save()
    response = client_a.get("/login/")
    assert response.status_code == 403
    assert b"suspended" in response.content
    assert b"Sign in" not in response.content


def test_session_from_tenant_a_is_anonymous_on_tenant_b(client_a: Client, client_b: Client) -> None:
    sign_in(client_a, TENANT_A.owner_email, TEST_PASSWORD)
    cookie = client_a.cookies["sessionid"]
    assert cookie["domain"] == ""  # host-only: the browser never sends it to another host
    assert client_a.get("/").status_code == 200

    client_b.cookies["sessionid"] = cookie.value
    response = client_b.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
