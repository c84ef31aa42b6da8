"""Signup and the workspace pages on a Citus cluster, for tenants on both workers, and two
tenants on different workers seeing only their own rows."""

from __future__ import annotations

import pytest
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.projects.models import Project
from tests.citus.conftest import ClusterTenant, run_subdomain, schema_node, worker_nodes
from tests.factories import TEST_PASSWORD
from tests.fixtures import follow_handoff, sign_in

pytestmark = [pytest.mark.citus, pytest.mark.usefixtures("fresh_signup_throttle")]


@pytest.fixture
def east(db: None, cluster_tenants: tuple[ClusterTenant, ClusterTenant]) -> ClusterTenant:
    return cluster_tenants[0]


@pytest.fixture
def west(db: None, cluster_tenants: tuple[ClusterTenant, ClusterTenant]) -> ClusterTenant:
    return cluster_tenants[1]


def _signed_in(tenant: ClusterTenant) -> Client:
    client = tenant.client()
    assert sign_in(client, tenant.owner_email, TEST_PASSWORD).status_code == 302
    return client


def test_the_session_tenants_live_on_different_workers(
    east: ClusterTenant, west: ClusterTenant
) -> None:
    assert {east.node, west.node} <= set(worker_nodes())
    assert east.node != west.node
    assert schema_node(east.tenant.schema_name) == east.node
    assert schema_node(west.tenant.schema_name) == west.node


def test_signup_page_lands_the_owner_in_a_distributed_workspace(db: None) -> None:
    subdomain = run_subdomain("page")
    response = Client(HTTP_HOST="localhost:8000").post(
        "/signup/",
        {
            "name": "Page Signup",
            "subdomain": subdomain,
            "email": "o@page.test",
            "password": TEST_PASSWORD,
        },
    )
    assert response.status_code == 302
    browser, landed = follow_handoff(response["Location"])
    assert landed.status_code == 302
    home = browser.get("/")
    assert home.status_code == 200
    assert b"Welcome to Page Signup" in home.content
    with public_context():
        tenant = Tenant.objects.get(subdomain=subdomain)
    assert schema_node(tenant.schema_name) in worker_nodes()


def test_signup_api_answers_201_with_a_distributed_workspace(db: None) -> None:
    subdomain = run_subdomain("api")
    response = Client(HTTP_HOST="localhost:8000").post(
        "/api/v1/signup",
        {
            "name": "Api Signup",
            "subdomain": subdomain,
            "email": "o@api.test",
            "password": TEST_PASSWORD,
        },
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["subdomain"] == subdomain
    browser, landed = follow_handoff(response.json()["handoff_url"])
    assert landed.status_code == 302
    assert browser.get("/projects/").status_code == 200
    with public_context():
        tenant = Tenant.objects.get(subdomain=subdomain)
    assert schema_node(tenant.schema_name) in worker_nodes()


@pytest.mark.parametrize("which", ["east", "west"])
def test_the_workspace_pages_work_on_each_worker(
    request: pytest.FixtureRequest, which: str
) -> None:
    tenant: ClusterTenant = request.getfixturevalue(which)
    owner = _signed_in(tenant)

    home = owner.get("/")
    assert home.status_code == 200
    assert tenant.owner_email.encode() in home.content
    created = owner.post("/projects/new/", {"name": f"Launch {which}", "description": "Q3"})
    assert created.status_code == 302
    listing = owner.get("/projects/")
    assert listing.status_code == 200
    assert f"Launch {which}".encode() in listing.content
    members = owner.get("/members/")
    assert members.status_code == 200
    assert tenant.owner_email.encode() in members.content
    assert owner.get("/billing/").status_code == 200


def test_tenants_on_different_workers_see_only_their_own_rows(
    east: ClusterTenant, west: ClusterTenant
) -> None:
    # given: a project made through each workspace's page, the same name in both
    east_owner, west_owner = _signed_in(east), _signed_in(west)
    assert (
        east_owner.post("/projects/new/", {"name": "East plan", "description": ""}).status_code
        == 302
    )
    assert (
        west_owner.post("/projects/new/", {"name": "West plan", "description": ""}).status_code
        == 302
    )

    # then: each page and each schema shows its own project only
    assert b"East plan" in east_owner.get("/projects/").content
    assert b"West plan" not in east_owner.get("/projects/").content
    assert b"West plan" in west_owner.get("/projects/").content
    assert b"East plan" not in west_owner.get("/projects/").content
    with tenant_context(east.tenant):
        assert list(Project.objects.values_list("name", flat=True)) == ["East plan"]
        assert list(User.objects.values_list("email", flat=True)) == [east.owner_email]
    with tenant_context(west.tenant):
        assert list(Project.objects.values_list("name", flat=True)) == ["West plan"]
        assert list(User.objects.values_list("email", flat=True)) == [west.owner_email]


def test_a_session_of_one_worker_tenant_is_anonymous_on_the_other(
    east: ClusterTenant, west: ClusterTenant
) -> None:
    east_owner = _signed_in(east)
    stolen = west.client()
    stolen.cookies = east_owner.cookies
    response = stolen.get("/projects/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
