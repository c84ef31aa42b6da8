"""The billing page: checkout and portal through the real stripe library and the fake."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tests.billing.conftest import signed_in
from tests.billing.fake_stripe import FakeStripe
from tests.factories import BillingAccountFactory, UserFactory


def test_without_keys_page_says_free_and_nothing_calls_stripe(
    owner_a: Client, stripe_off: FakeStripe, tenant_a: Tenant
) -> None:
    page = owner_a.get("/billing/")
    assert page.status_code == 200
    assert b"Billing is not configured" in page.content
    assert b"<strong>Free</strong>" in page.content

    refused = owner_a.post("/billing/checkout/", {"plan": "free"})
    assert refused.status_code == 400
    assert "not configured" in refused.context["form"].non_field_errors()[0]
    assert owner_a.post("/billing/portal/").status_code == 302
    assert stripe_off.api_calls() == []
    assert not BillingAccount.objects.exists()


def test_owner_checkout_creates_customer_and_session_for_the_tenant(
    owner_a: Client, stripe_fake: FakeStripe, pro_plan: Plan, tenant_a: Tenant
) -> None:
    response = owner_a.post("/billing/checkout/", {"plan": "pro"})

    assert response.status_code == 302
    [session] = stripe_fake.checkout_sessions.values()
    assert response["Location"] == session["url"]
    [customer] = stripe_fake.customers.values()
    assert customer["metadata"] == {"tenant_id": str(tenant_a.id)}
    assert customer["email"] == "owner@alpha.test"
    params = session["params"]
    assert params["mode"] == "subscription"
    assert params["customer"] == customer["id"]
    assert params["client_reference_id"] == str(tenant_a.id)
    assert params["subscription_data[metadata][tenant_id]"] == str(tenant_a.id)
    assert params["line_items[0][price]"] == "price_pro_monthly"
    assert params["success_url"] == "http://alpha.localhost/billing/?checkout=success"
    assert params["cancel_url"].startswith("http://alpha.localhost/billing/")
    account = BillingAccount.objects.get(tenant=tenant_a)
    assert account.stripe_customer_id == customer["id"]
    assert account.plan.code == "free"  # nothing changes before Stripe confirms

    # a second try (cancelled checkout) reuses the customer
    assert owner_a.post("/billing/checkout/", {"plan": "pro"}).status_code == 302
    assert len(stripe_fake.customers) == 1
    assert len(stripe_fake.checkout_sessions) == 2


def test_unknown_or_free_plan_is_a_form_error(
    owner_a: Client, stripe_fake: FakeStripe, pro_plan: Plan
) -> None:
    for code in ("free", "gold"):
        response = owner_a.post("/billing/checkout/", {"plan": code})
        assert response.status_code == 400
        assert response.context["form"].errors["plan"] == [f"There is no paid plan '{code}'."]
    assert stripe_fake.api_calls() == []


def test_portal_opens_for_the_workspace_customer(
    owner_a: Client, stripe_fake: FakeStripe, pro_plan: Plan
) -> None:
    owner_a.post("/billing/checkout/", {"plan": "pro"})
    [customer_id] = stripe_fake.customers

    response = owner_a.post("/billing/portal/")

    assert response.status_code == 302
    [portal] = stripe_fake.portal_sessions.values()
    assert response["Location"] == portal["url"]
    assert portal["customer"] == customer_id
    assert portal["return_url"] == "http://alpha.localhost/billing/"


def test_only_owners_see_billing(tenant_a: Tenant, stripe_fake: FakeStripe, pro_plan: Plan) -> None:
    with tenant_context(tenant_a):
        admin = UserFactory.create(email="admin@alpha.test", role=User.Role.ADMIN)
    client = signed_in(tenant_a, admin)
    assert client.get("/billing/").status_code == 403
    assert client.post("/billing/checkout/", {"plan": "pro"}).status_code == 403
    assert stripe_fake.api_calls() == []


def test_billing_state_of_a_is_not_visible_or_usable_from_b(
    owner_a: Client,
    owner_b: Client,
    pro_plan: Plan,
    tenant_a: Tenant,
    tenant_b: Tenant,
    stripe_fake: FakeStripe,
) -> None:
    BillingAccountFactory.create(
        tenant=tenant_a,
        plan=pro_plan,
        stripe_customer_id="cus_alpha",
        subscription_status=BillingAccount.Status.ACTIVE,
        stripe_subscription_id="sub_alpha",
    )
    assert b"<strong>Pro</strong>" in owner_a.get("/billing/").content
    page_b = owner_b.get("/billing/")
    assert b"<strong>Free</strong>" in page_b.content
    assert b"Manage billing" not in page_b.content
    # B's portal has nothing to open; A's customer is never reachable from B
    refused = owner_b.post("/billing/portal/", follow=True)
    assert refused.redirect_chain == [("/billing/", 302)]
    assert b"Choose a paid plan first" in refused.content
    assert stripe_fake.portal_sessions == {}
    assert [c for c in stripe_fake.api_calls() if "portal" in c.path] == []
    assert not BillingAccount.objects.filter(tenant=tenant_b).exists()
    # B's session means nothing on A's host
    stranger = owner_b.get("/billing/", HTTP_HOST="alpha.localhost")
    assert stranger.status_code == 302
    assert stranger["Location"].startswith("/login/")


def customer_creations(fake: FakeStripe) -> int:
    return sum(1 for call in fake.api_calls() if call.path == "/v1/customers")


def test_failed_session_keeps_the_customer_and_the_retry_reuses_it(
    owner_a: Client, stripe_fake: FakeStripe, pro_plan: Plan, tenant_a: Tenant
) -> None:
    # given Stripe fails to open the Checkout Session once, after creating the customer
    stripe_fake.fail_next("POST", "/v1/checkout/sessions", status=500)
    failed = owner_a.post("/billing/checkout/", {"plan": "pro"})

    assert failed.status_code == 400
    assert "could not be reached" in failed.context["form"].non_field_errors()[0]
    [customer] = stripe_fake.customers.values()
    assert BillingAccount.objects.get(tenant=tenant_a).stripe_customer_id == customer["id"]

    # when another owner (another e-mail) tries again
    with tenant_context(tenant_a):
        second = UserFactory.create(email="second-owner@alpha.test", role=User.Role.OWNER)
    retry = signed_in(tenant_a, second).post("/billing/checkout/", {"plan": "pro"})

    # then the stored customer is reused: no second customer, no idempotency conflict
    assert retry.status_code == 302
    assert customer_creations(stripe_fake) == 1
    assert list(stripe_fake.customers) == [customer["id"]]
    [session] = stripe_fake.checkout_sessions.values()
    assert session["customer"] == customer["id"]
    assert retry["Location"] == session["url"]


def test_refused_checkout_is_a_clear_message_with_stripes_reference(
    owner_a: Client, stripe_fake: FakeStripe, pro_plan: Plan, caplog: pytest.LogCaptureFixture
) -> None:
    stripe_fake.fail_next("POST", "/v1/checkout/sessions", status=400, message="No such price")

    with caplog.at_level(logging.ERROR, logger="shared_apps.billing.checkout"):
        response = owner_a.post("/billing/checkout/", {"plan": "pro"})

    assert response.status_code == 400
    [error] = response.context["form"].non_field_errors()
    assert error.startswith("Stripe, our payment provider, refused this request")
    assert "(reference req_" in error
    assert b'id="billing-errors"' in response.content
    [record] = [r for r in caplog.records if r.getMessage() == "stripe refused a request"]
    assert record.stripe_request_id.startswith("req_")  # type: ignore[attr-defined]
    assert record.stripe_request_id in error  # type: ignore[attr-defined]
    assert stripe_fake.checkout_sessions == {}


def test_refused_portal_is_a_clear_message_on_the_billing_page(
    owner_a: Client, stripe_fake: FakeStripe, pro_plan: Plan
) -> None:
    owner_a.post("/billing/checkout/", {"plan": "pro"})
    stripe_fake.fail_next("POST", "/v1/billing_portal/sessions", status=400)

    response = owner_a.post("/billing/portal/", follow=True)

    assert response.redirect_chain == [("/billing/", 302)]
    assert response.status_code == 200
    assert b"Stripe, our payment provider, refused this request" in response.content
    assert stripe_fake.portal_sessions == {}
