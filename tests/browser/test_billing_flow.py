"""An owner upgrades from the free plan to a paid one through (fake) Stripe Checkout."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from config.celery import app
from shared_apps.billing.models import BillingAccount, Plan, StripeEvent
from shared_apps.tenants.models import Tenant
from tests.billing.conftest import PRO_PLAN
from tests.billing.fake_stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, event, signature
from tests.factories import TEST_PASSWORD, PlanFactory
from tests.fixtures import in_own_connection

pytestmark = pytest.mark.browser

# Checkout URLs point at Stripe's own host, which the billing page's CSP (form-action) lets
# the checkout form redirect to; the browser context serves that host from the fake.
STRIPE_CHECKOUT = "https://checkout.stripe.com"


@pytest.fixture
def billing_on(settings: Any, stripe_server: FakeStripe) -> Iterator[FakeStripe]:
    """Billing on, pointed at the fake; the live server runs in this process and sees it too.

    Events the webhook queues are processed at once, on the live server's thread.
    """
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    stripe_server.reset()
    stripe_server.checkout_base = STRIPE_CHECKOUT
    app.conf.task_always_eager = True
    yield stripe_server
    app.conf.task_always_eager = False
    stripe_server.reset()


@pytest.fixture
def pro_plan_committed(db: None, tenant_a: Tenant) -> Iterator[None]:
    """A paid plan the live server can see; it and the workspace's billing state go after."""

    def create() -> None:
        PlanFactory.create(**PRO_PLAN)

    in_own_connection(create)
    yield

    def forget() -> None:
        account = BillingAccount.objects.filter(tenant_id=tenant_a.id).first()
        if account is not None:
            StripeEvent.objects.filter(
                payload__data__object__customer=account.stripe_customer_id
            ).delete()
            account.delete()
        Plan.objects.filter(code="pro").delete()

    in_own_connection(forget)


def forget_sign_in(tenant: Tenant, session_key: str, since: datetime) -> None:
    """Remove the session and the sign-in record the live server committed."""
    from axes.models import AccessLog
    from django.contrib.sessions.models import Session

    def work() -> None:
        Session.objects.filter(session_key=session_key).delete()
        AccessLog.objects.filter(username="owner@alpha.test", attempt_time__gte=since).delete()

    in_own_connection(work, tenant)


def deliver(live_url: str, kind: str, obj: dict[str, Any]) -> None:
    """POST a signed event to the root host's webhook, as Stripe does."""
    body = json.dumps(event(kind, obj))
    request = urllib.request.Request(
        f"{live_url}/billing/stripe/webhook/",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": signature(body)},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 200


def test_owner_upgrades_to_a_paid_plan_through_checkout(
    tenant_a: Tenant,
    live_url: str,
    page: Any,
    artifacts: Path,
    billing_on: FakeStripe,
    pro_plan_committed: None,
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")
    page.context.route(
        f"{STRIPE_CHECKOUT}/**",
        lambda route: route.fulfill(
            response=route.fetch(url=route.request.url.replace(STRIPE_CHECKOUT, billing_on.url))
        ),
    )
    since = timezone.now()
    try:
        page.goto(f"{base}/login/")
        page.fill("#id_auth-username", "owner@alpha.test")
        page.fill("#id_auth-password", TEST_PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(f"{base}/")

        page.goto(f"{base}/billing/")
        assert "Plan: Free" in page.locator("#billing-state").inner_text()
        page.screenshot(path=str(artifacts / "billing-free.png"), full_page=True)
        page.click("button:has-text('Choose Pro')")

        page.wait_for_url(re.compile(rf"^{re.escape(STRIPE_CHECKOUT)}/pay/"), timeout=15_000)
        assert page.locator("h1").inner_text() == "Fake Stripe Checkout"
        [session] = billing_on.checkout_sessions.values()
        assert page.url == session["url"]
        page.screenshot(path=str(artifacts / "billing-checkout.png"), full_page=True)
        page.click("#pay")

        page.wait_for_url(f"{base}/billing/?checkout=success")
        assert page.locator("#checkout-success").count() == 1
        assert "Plan: Free" in page.locator("#billing-state").inner_text()  # Stripe has not told us

        completed = billing_on.checkout_complete(session["id"])
        subscription = billing_on.subscriptions[completed["subscription"]]
        deliver(live_url, "checkout.session.completed", completed)
        deliver(live_url, "customer.subscription.created", subscription)

        page.reload()
        state = page.locator("#billing-state").inner_text()
        assert "Plan: Pro" in state
        assert "Subscription: Active" in state
        assert "Manage billing" in state
        assert page.locator("#plans button").count() == 0  # nothing left to choose
        page.screenshot(path=str(artifacts / "billing-paid.png"), full_page=True)
        account = BillingAccount.objects.get(tenant=tenant_a)
        assert (account.plan.code, account.subscription_status) == ("pro", "active")
        assert StripeEvent.objects.filter(processed_at__isnull=False).count() == 2
    finally:
        cookie = next((c for c in page.context.cookies() if c["name"] == "sessionid"), None)
        if cookie is not None:
            forget_sign_in(tenant_a, cookie["value"], since)
