"""A paid plan chosen at signup: the owner lands signed in on the new workspace, then pays.

Signups here run inside the test transaction (like shared_apps/signup/tests/test_signup.py),
so the workspaces they create are rolled back with it.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from shared_apps.accounts.handoff import handoff_issue
from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tests.billing.fake_stripe import FakeStripe
from tests.factories import TEST_PASSWORD
from tests.fixtures import follow_handoff

SIGNUP = {
    "name": "Acme Rockets",
    "subdomain": "acme",
    "email": "wile@acme.test",
    "password": TEST_PASSWORD,
}
WORKSPACE = "http://acme.localhost:8000"
CHECKOUT = "/billing/checkout/?plan=pro"


pytestmark = pytest.mark.usefixtures("fresh_signup_throttle")


def new_tenant() -> Tenant | None:
    with public_context():
        return Tenant.objects.filter(subdomain="acme").first()


def pay_from_checkout_page(browser: Client) -> Any:
    """The owner sees the chosen plan and presses "Continue to payment"."""
    page = browser.get(CHECKOUT)
    assert page.status_code == 200
    assert b'id="checkout-continue"' in page.content
    assert b"Continue to payment" in page.content
    return browser.post("/billing/checkout/", {"plan": "pro"})


def assert_checkout_for(tenant: Tenant, stripe: FakeStripe, location: str) -> None:
    [session] = stripe.checkout_sessions.values()
    assert location == session["url"]
    [customer] = stripe.customers.values()
    assert customer["metadata"] == {"tenant_id": str(tenant.id)}
    assert customer["email"] == "wile@acme.test"
    params = session["params"]
    assert params["client_reference_id"] == str(tenant.id)
    assert params["subscription_data[metadata][tenant_id]"] == str(tenant.id)
    assert params["line_items[0][price]"] == "price_pro_monthly"
    assert params["success_url"] == f"{WORKSPACE}/billing/?checkout=success"
    assert params["cancel_url"] == f"{WORKSPACE}/billing/?checkout=cancelled"


# -- billing on ---------------------------------------------------------------------------


def test_signup_page_offers_the_plans_and_preselects_one_from_the_link(
    root: Client, stripe_fake: FakeStripe, pro_plan: Plan
) -> None:
    plain = root.get("/signup/")
    assert plain.context["form"]["plan"].value() == "free"
    linked = root.get("/signup/", {"plan": "pro"})
    assert linked.status_code == 200
    assert linked.context["form"]["plan"].value() == "pro"
    assert b'id="id_plan_1" checked' in linked.content
    assert b"Pro \xc2\xb7 29.00 USD / month" in linked.content
    assert stripe_fake.api_calls() == []


def test_signup_page_with_a_paid_plan_continues_to_checkout_for_the_new_workspace(
    root: Client, stripe_fake: FakeStripe, pro_plan: Plan
) -> None:
    response = root.post("/signup/", {**SIGNUP, "plan": "pro"})

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.netloc, location.path) == ("acme.localhost:8000", "/auth/handoff/")
    assert parse_qs(location.query)["next"] == [CHECKOUT]
    assert stripe_fake.api_calls() == []  # the signup itself never waits on Stripe

    browser, landed = follow_handoff(response["Location"])
    assert landed.status_code == 302
    assert landed["Location"] == CHECKOUT
    assert stripe_fake.api_calls() == []  # a GET only asks; paying is a POST

    paid = pay_from_checkout_page(browser)

    assert paid.status_code == 302
    tenant = new_tenant()
    assert tenant is not None
    assert_checkout_for(tenant, stripe_fake, paid["Location"])
    assert BillingAccount.objects.get(tenant=tenant).plan.code == "free"  # until Stripe confirms


def test_api_signup_with_a_paid_plan_names_the_checkout_page_as_next(
    root: Client, stripe_fake: FakeStripe, pro_plan: Plan
) -> None:
    response = root.post(
        "/api/v1/signup", {**SIGNUP, "plan": "pro"}, content_type="application/json"
    )

    assert response.status_code == 201
    body = response.json()
    assert body["url"] == f"{WORKSPACE}/"
    assert body["next_url"] == f"{WORKSPACE}{CHECKOUT}"
    assert parse_qs(urlsplit(body["handoff_url"]).query)["next"] == [CHECKOUT]
    assert stripe_fake.api_calls() == []

    browser, landed = follow_handoff(body["handoff_url"])
    assert landed["Location"] == CHECKOUT
    paid = pay_from_checkout_page(browser)

    tenant = new_tenant()
    assert tenant is not None
    assert str(tenant.id) == body["id"]
    assert_checkout_for(tenant, stripe_fake, paid["Location"])


@pytest.mark.parametrize("plan", ["", "free"])
def test_signup_on_the_free_plan_lands_on_the_home_page(
    root: Client, stripe_fake: FakeStripe, pro_plan: Plan, plan: str
) -> None:
    response = root.post(
        "/api/v1/signup", {**SIGNUP, "plan": plan}, content_type="application/json"
    )

    assert response.status_code == 201
    body = response.json()
    assert body["next_url"] == f"{WORKSPACE}/"
    assert "next" not in parse_qs(urlsplit(body["handoff_url"]).query)
    _, landed = follow_handoff(body["handoff_url"])
    assert landed["Location"] == "/"
    assert stripe_fake.api_calls() == []


def test_signup_page_refuses_an_unknown_plan_and_creates_nothing(
    root: Client, stripe_fake: FakeStripe, pro_plan: Plan
) -> None:
    response = root.post("/signup/", {**SIGNUP, "plan": "gold"})

    assert response.status_code == 200
    assert response.context["form"].errors == {"plan": ["There is no paid plan 'gold'."]}
    assert b'id="plan-errors"' in response.content
    assert new_tenant() is None
    assert stripe_fake.api_calls() == []


@pytest.mark.parametrize(
    ("plan", "status", "code"),
    [("gold", 404, "plan_not_found"), ("not a slug", 400, "validation_failed")],
)
def test_api_signup_refuses_an_unknown_plan_and_creates_nothing(
    root: Client, stripe_fake: FakeStripe, pro_plan: Plan, plan: str, status: int, code: str
) -> None:
    response = root.post(
        "/api/v1/signup", {**SIGNUP, "plan": plan}, content_type="application/json"
    )

    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert [error["field"] for error in problem["errors"]] == ["plan"]
    assert new_tenant() is None
    assert stripe_fake.api_calls() == []


def test_stripe_down_still_creates_the_workspace_and_the_owner_can_retry(
    root: Client, stripe_fake: FakeStripe, pro_plan: Plan, settings: Any
) -> None:
    # given Stripe unreachable: nothing listens on the API address
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{probe.getsockname()[1]}"

    response = root.post("/signup/", {**SIGNUP, "plan": "pro"})
    browser, landed = follow_handoff(response["Location"])
    failed = pay_from_checkout_page(browser)

    # then the workspace exists, and the owner sees why the payment did not start
    tenant = new_tenant()
    assert tenant is not None
    assert landed["Location"] == CHECKOUT
    assert failed.status_code == 400
    assert "could not be reached" in failed.context["form"].non_field_errors()[0]
    assert b'id="billing-errors"' in failed.content
    assert b"Choose Pro" in failed.content  # the way to try again

    # when Stripe is back, the same button opens the checkout
    settings.STRIPE_API_BASE = stripe_fake.url
    retried = browser.post("/billing/checkout/", {"plan": "pro"})
    assert retried.status_code == 302
    assert_checkout_for(tenant, stripe_fake, retried["Location"])


# -- billing off --------------------------------------------------------------------------


def test_without_keys_the_plan_is_ignored_and_nothing_calls_stripe(
    root: Client, stripe_off: FakeStripe, pro_plan: Plan
) -> None:
    page = root.get("/signup/", {"plan": "pro"})
    assert "plan" not in page.context["form"].fields
    assert b'id="plan-choice"' not in page.content

    response = root.post("/signup/", {**SIGNUP, "plan": "pro"})
    assert response.status_code == 302
    assert "next" not in parse_qs(urlsplit(response["Location"]).query)
    browser, landed = follow_handoff(response["Location"])
    assert landed["Location"] == "/"

    api = root.post(
        "/api/v1/signup",
        {**SIGNUP, "subdomain": "acme-api", "plan": "gold"},
        content_type="application/json",
    )
    assert api.status_code == 201
    assert api.json()["next_url"] == "http://acme-api.localhost:8000/"

    # a continue link followed anyway only shows that billing is off
    refused = browser.get(CHECKOUT)
    assert refused.status_code == 400
    assert b"Billing is not configured" in refused.content
    assert stripe_off.api_calls() == []
    assert not BillingAccount.objects.exists()


# -- where a hand-off may continue ----------------------------------------------------------


def owner_handoff(tenant: Tenant, next_path: str) -> Any:
    from tenancy import tenant_context
    from tests.billing.conftest import owner_of

    with tenant_context(tenant):
        owner = owner_of(tenant)
    token = handoff_issue(tenant_id=tenant.id, user_id=owner.pk)
    browser = Client(HTTP_HOST="alpha.localhost")
    return browser.post("/auth/handoff/", {"token": token, "next": next_path})


def test_handoff_continues_to_the_workspace_checkout_page(tenant_a: Tenant) -> None:
    assert owner_handoff(tenant_a, CHECKOUT)["Location"] == CHECKOUT


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.test/billing/checkout/?plan=pro",
        "//evil.test/billing/checkout/?plan=pro",
        "/\\evil.test/billing/checkout/?plan=pro",
        "http://beta.localhost/billing/checkout/?plan=pro",
        "javascript:alert(1)",
        "/billing/portal/",
        "/projects/",
        "/billing/checkout/",
        "/billing/checkout/?plan=pro&next=//evil.test",
        "/billing/checkout/?plan=pro&plan=gold",
        "/billing/checkout/?plan=<script>",
        "/billing/checkout/?plan=pro#//evil.test",
        "/billing/checkout//?plan=pro",
    ],
)
def test_handoff_never_continues_anywhere_else(tenant_a: Tenant, next_path: str) -> None:
    landed = owner_handoff(tenant_a, next_path)
    assert landed.status_code == 302
    assert landed["Location"] == "/"


def test_an_expired_handoff_keeps_the_checkout_for_the_password_sign_in(
    client_a: Client,
) -> None:
    refused = client_a.get("/auth/handoff/", {"token": "forged", "next": CHECKOUT})
    assert refused.status_code == 400
    assert b'href="/login/?next=%2Fbilling%2Fcheckout%2F%3Fplan%3Dpro"' in refused.content
    elsewhere = client_a.get("/auth/handoff/", {"token": "forged", "next": "//evil.test"})
    assert b'href="/login/"' in elsewhere.content
