"""A workspace suspended for non-payment opens one door: its owners sign in to pay.

Members see the suspended page; an operator's suspension keeps every door shut; the health
probes answer on every host whatever the workspace's state.
"""

from __future__ import annotations

import pytest
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.services import tenant_resume, tenant_suspend
from tenancy import public_context, tenant_context
from tests.factories import UserFactory
from tests.fixtures import browser_for

PROBE_PATHS = ["/health/", "/healthz", "/readyz", "/version"]


def suspend_for_non_payment(tenant: Tenant) -> None:
    tenant_suspend(tenant=tenant, reason="payment overdue", actor="billing", for_non_payment=True)


def member_of(tenant: Tenant) -> Client:
    with tenant_context(tenant):
        member = UserFactory.create(email="kim@alpha.test", role=User.Role.MEMBER)
    return browser_for(tenant, member)


def test_the_owner_of_a_workspace_suspended_for_non_payment_reaches_only_billing(
    tenant_a: Tenant, owner_a: Client
) -> None:
    suspend_for_non_payment(tenant_a)

    page = owner_a.get("/billing/")
    assert page.status_code == 200
    assert b'id="billing-only"' in page.content
    assert b'href="/projects/"' not in page.content  # no way into the rest of the workspace

    for elsewhere in ("/", "/projects/", "/members/", "/settings/api-keys/", "/admin/"):
        response = owner_a.get(elsewhere)
        assert (response.status_code, response["Location"]) == (302, "/billing/"), elsewhere


def test_a_member_of_a_workspace_suspended_for_non_payment_sees_the_suspended_page(
    tenant_a: Tenant,
) -> None:
    member = member_of(tenant_a)
    suspend_for_non_payment(tenant_a)

    page = member.get("/billing/")
    assert page.status_code == 403
    assert b'id="suspended-for-non-payment"' in page.content
    assert member.get("/", follow=True).status_code == 403
    assert member.post("/logout/").status_code == 302  # signing out stays possible


def test_an_anonymous_visitor_is_sent_to_sign_in(tenant_a: Tenant, client_a: Client) -> None:
    suspend_for_non_payment(tenant_a)

    billing = client_a.get("/billing/")
    assert billing.status_code == 302
    assert billing["Location"].startswith("/login/?next=/billing/")
    login = client_a.get("/login/")
    assert login.status_code == 200
    assert b'id="billing-only"' in login.content


def test_the_api_of_a_workspace_suspended_for_non_payment_stays_closed(
    tenant_a: Tenant, owner_a: Client
) -> None:
    suspend_for_non_payment(tenant_a)

    response = owner_a.get("/api/v1/projects/")
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_suspended"


def test_an_operators_suspension_opens_no_door_even_to_owners(
    tenant_a: Tenant, owner_a: Client
) -> None:
    tenant_suspend(tenant=tenant_a, reason="abuse report", actor="cli:ops@host")

    for path in ("/billing/", "/login/", "/"):
        response = owner_a.get(path)
        assert response.status_code == 403, path
        assert b'id="suspended-for-non-payment"' not in response.content


def test_resuming_closes_the_door_and_forgets_the_reason(tenant_a: Tenant, owner_a: Client) -> None:
    suspend_for_non_payment(tenant_a)
    with public_context():
        assert Tenant.objects.get(pk=tenant_a.pk).suspended_for == "non_payment"

    tenant_resume(tenant=tenant_a, actor="billing")

    with public_context():
        assert Tenant.objects.get(pk=tenant_a.pk).suspended_for == ""
    home = owner_a.get("/")
    assert home.status_code == 200
    assert b'id="billing-only"' not in home.content


def test_another_workspace_is_untouched_by_the_door(
    tenant_a: Tenant, tenant_b: Tenant, owner_b: Client
) -> None:
    suspend_for_non_payment(tenant_a)

    # tenant B keeps working, without the suspension banner
    home = owner_b.get("/")
    assert home.status_code == 200
    assert b'id="billing-only"' not in home.content
    # and B's owner's session means nothing on A's host: A's door asks for A's sign-in
    on_a = Client(HTTP_HOST="alpha.localhost")
    on_a.cookies = owner_b.cookies
    response = on_a.get("/billing/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("path", PROBE_PATHS)
@pytest.mark.parametrize("suspension", ["operator", "non_payment"])
def test_health_answers_on_a_suspended_workspaces_host(
    tenant_a: Tenant, client_a: Client, path: str, suspension: str
) -> None:
    tenant_suspend(
        tenant=tenant_a,
        reason="test",
        actor="test",
        for_non_payment=suspension == "non_payment",
    )

    response = client_a.get(path)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("path", PROBE_PATHS)
def test_health_answers_on_an_unknown_host(db: None, path: str) -> None:
    assert Client(HTTP_HOST="nobody.localhost").get(path).status_code == 200
