"""Stripe webhooks: verified, stored once by event id, applied once, order-independent."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from shared_apps.billing import stripe_gateway as gateway
from shared_apps.billing import webhooks
from shared_apps.billing.errors import StripeRequestError, StripeUnavailableError
from shared_apps.billing.models import BillingAccount, Plan, StripeEvent
from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tests.billing.conftest import WEBHOOK, post_event
from tests.billing.fake_stripe import FakeStripe, event, signature
from tests.factories import BillingAccountFactory, StripeEventFactory, TenantFactory

Deliver = Callable[[dict[str, Any]], Any]


def subscribed(fake: FakeStripe, owner: Client, tenant: Tenant, status: str = "active") -> dict:
    """The owner went through checkout and paid; return the completed session."""
    owner.post("/billing/checkout/", {"plan": "pro"})
    [session_id] = fake.checkout_sessions
    return fake.checkout_complete(session_id, status=status)


def subscription_calls(fake: FakeStripe) -> int:
    return sum(1 for call in fake.api_calls() if call.path.startswith("/v1/subscriptions"))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "t=1,v1=deadbeef",
        signature("{}"),  # signed, but for another body
        signature("x", secret="whsec_someone_else"),
    ],
    ids=["missing", "garbage", "other-body", "other-secret"],
)
def test_bad_or_missing_signature_is_400_and_changes_nothing(
    public_client: Client,
    stripe_fake: FakeStripe,
    tenant_a: Tenant,
    header: str | None,
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    invoice = {
        "object": "invoice",
        "customer": "cus_1",
        "metadata": {"tenant_id": str(tenant_a.id)},
    }
    body = json.dumps(event("invoice.paid", invoice))
    extra: dict[str, Any] = {"HTTP_STRIPE_SIGNATURE": header} if header else {}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = public_client.post(WEBHOOK, data=body, content_type="application/json", **extra)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "signature_invalid"
    assert callbacks == []
    assert not StripeEvent.objects.exists()
    assert not BillingAccount.objects.exists()
    assert stripe_fake.api_calls() == []


def test_webhook_answers_only_on_the_root_host(
    client_a: Client, stripe_fake: FakeStripe, tenant_a: Tenant
) -> None:
    response = post_event(client_a, event("invoice.paid", {"customer": "cus_1"}))
    assert response.status_code == 404
    assert not StripeEvent.objects.exists()


def test_checkout_completed_puts_the_workspace_on_the_paid_plan(
    owner_a: Client,
    stripe_fake: FakeStripe,
    pro_plan: Plan,
    tenant_a: Tenant,
    deliver: Deliver,
) -> None:
    session = subscribed(stripe_fake, owner_a, tenant_a)

    deliver(event("checkout.session.completed", session))

    account = BillingAccount.objects.get(tenant=tenant_a)
    assert account.plan == pro_plan
    assert account.subscription_status == "active"
    assert account.stripe_subscription_id == session["subscription"]
    assert account.current_period_end is not None
    assert StripeEvent.objects.get().processed_at is not None
    page = owner_a.get("/billing/")
    assert b"<strong>Pro</strong>" in page.content
    assert b"Manage billing" in page.content


def test_same_event_delivered_five_times_has_one_effect(
    owner_a: Client,
    stripe_fake: FakeStripe,
    pro_plan: Plan,
    tenant_a: Tenant,
    deliver: Deliver,
) -> None:
    session = subscribed(stripe_fake, owner_a, tenant_a)
    deliver(event("checkout.session.completed", session))
    subscription = stripe_fake.subscription_put(
        customer=session["customer"],
        status="past_due",
        price="price_pro_monthly",
        subscription_id=session["subscription"],
    )
    failed = event(
        "invoice.payment_failed",
        {
            "object": "invoice",
            "id": "in_1",
            "customer": session["customer"],
            "parent": {"subscription_details": {"subscription": subscription["id"]}},
        },
    )
    mail.outbox.clear()
    calls_before = subscription_calls(stripe_fake)

    for _ in range(5):
        deliver(failed)

    stored = StripeEvent.objects.get(event_id=failed["id"])
    assert stored.deliveries == 5
    assert stored.attempts == 1
    assert subscription_calls(stripe_fake) == calls_before + 1  # applied once
    assert [message.subject for message in mail.outbox] == ["Payment failed for Alpha Inc"]
    assert BillingAccount.objects.get(tenant=tenant_a).past_due_since is not None


@pytest.mark.parametrize("order", ["created_first", "updated_first"])
def test_out_of_order_events_converge_on_stripes_latest_state(
    owner_a: Client,
    stripe_fake: FakeStripe,
    pro_plan: Plan,
    tenant_a: Tenant,
    deliver: Deliver,
    order: str,
) -> None:
    session = subscribed(stripe_fake, owner_a, tenant_a)
    sub_id = session["subscription"]
    created = event("customer.subscription.created", stripe_fake.subscriptions[sub_id])
    # later, the customer cancelled in the portal: Stripe now holds the canceled subscription
    canceled = stripe_fake.subscription_put(
        customer=session["customer"],
        status="canceled",
        price="price_pro_monthly",
        subscription_id=sub_id,
        tenant_id=str(tenant_a.id),
    )
    deleted = event("customer.subscription.deleted", canceled)

    events = [created, deleted] if order == "created_first" else [deleted, created]
    for delivery in events:
        deliver(delivery)

    account = BillingAccount.objects.get(tenant=tenant_a)
    assert account.subscription_status == "canceled"
    assert account.plan.code == "free"
    assert StripeEvent.objects.filter(processed_at__isnull=False).count() == 2


def test_a_newer_subscription_wins_over_an_old_canceled_one(
    owner_a: Client,
    stripe_fake: FakeStripe,
    pro_plan: Plan,
    tenant_a: Tenant,
    deliver: Deliver,
) -> None:
    session = subscribed(stripe_fake, owner_a, tenant_a)
    old = stripe_fake.subscription_put(
        customer=session["customer"],
        status="canceled",
        price="price_pro_monthly",
        subscription_id=session["subscription"],
        created=1_700_000_000,
    )
    new = stripe_fake.subscription_put(
        customer=session["customer"],
        status="active",
        price="price_pro_monthly",
        tenant_id=str(tenant_a.id),
    )

    deliver(event("customer.subscription.created", new))
    deliver(event("customer.subscription.deleted", old))  # the late one

    account = BillingAccount.objects.get(tenant=tenant_a)
    assert (account.stripe_subscription_id, account.plan.code) == (new["id"], "pro")


def test_failed_processing_is_recorded_and_a_redelivery_processes_it(
    owner_a: Client,
    public_client: Client,
    stripe_fake: FakeStripe,
    pro_plan: Plan,
    tenant_a: Tenant,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    session = subscribed(stripe_fake, owner_a, tenant_a)
    completed = event("checkout.session.completed", session)
    with django_capture_on_commit_callbacks(execute=False):
        assert post_event(public_client, completed).status_code == 200

    def down(**kwargs: Any) -> Any:
        raise StripeUnavailableError("connection reset")

    monkeypatch.setattr(gateway, "subscriptions_for_customer", down)
    with pytest.raises(StripeUnavailableError):
        webhooks.stripe_event_process(event_id=completed["id"])
    stored = StripeEvent.objects.get(event_id=completed["id"])
    assert (stored.processed_at, stored.attempts) == (None, 1)
    assert stored.last_error == "StripeUnavailableError: connection reset"
    assert BillingAccount.objects.get(tenant=tenant_a).plan.code == "free"

    monkeypatch.undo()
    deliver(completed)  # Stripe tries again

    stored.refresh_from_db()
    assert stored.processed_at is not None
    assert (stored.attempts, stored.deliveries, stored.last_error) == (2, 2, "")
    assert BillingAccount.objects.get(tenant=tenant_a).plan == pro_plan


def test_event_for_no_known_workspace_is_stored_and_ignored(
    stripe_fake: FakeStripe, deliver: Deliver, tenant_a: Tenant
) -> None:
    deliver(event("invoice.paid", {"object": "invoice", "customer": "cus_unknown"}))
    deliver(event("customer.created", {"object": "customer", "id": "cus_x"}))
    assert StripeEvent.objects.filter(processed_at__isnull=False).count() == 2
    assert not BillingAccount.objects.exists()


def test_webhook_without_keys_is_refused(public_client: Client, stripe_off: FakeStripe) -> None:
    response = post_event(public_client, event("invoice.paid", {"customer": "cus_1"}))
    assert response.status_code == 404
    assert response.json()["code"] == "billing_not_configured"
    assert not StripeEvent.objects.exists()


def test_events_left_unprocessed_are_queued_again(
    owner_a: Client,
    stripe_fake: FakeStripe,
    pro_plan: Plan,
    tenant_a: Tenant,
    public_client: Client,
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    session = subscribed(stripe_fake, owner_a, tenant_a)
    completed = event("checkout.session.completed", session)
    with django_capture_on_commit_callbacks(execute=False):  # the queued message was lost
        post_event(public_client, completed)
    assert webhooks.stripe_events_retry(older_than=timedelta(minutes=30)) == 0  # too recent

    StripeEvent.objects.update(received_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.stripe_events_retry(older_than=timedelta(minutes=30)) == 1

    assert StripeEvent.objects.get().processed_at is not None
    assert BillingAccount.objects.get(tenant=tenant_a).plan == pro_plan
    assert webhooks.stripe_events_retry(older_than=timedelta(0)) == 0


def test_events_for_an_archived_workspace_without_schema_complete_without_email(
    stripe_fake: FakeStripe,
    pro_plan: Plan,
    deliver: Deliver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given an archived workspace whose schema is gone, still known to Stripe
    tenant_id = uuid.uuid4()
    with public_context():
        archived = TenantFactory.create(
            id=tenant_id, name="Gone", subdomain="gone", status=Tenant.Status.ARCHIVED
        )
    BillingAccountFactory.create(
        tenant=archived,
        plan=pro_plan,
        stripe_customer_id="cus_gone",
        subscription_status=BillingAccount.Status.ACTIVE,
    )
    subscription = stripe_fake.subscription_put(
        customer="cus_gone", status="past_due", price="price_pro_monthly"
    )

    with caplog.at_level(logging.WARNING, logger="shared_apps.billing.notifications"):
        deliver(event("invoice.payment_failed", {"object": "invoice", "customer": "cus_gone"}))
        deliver(
            event(
                "customer.subscription.deleted",
                stripe_fake.subscription_put(
                    customer="cus_gone",
                    status="canceled",
                    price="price_pro_monthly",
                    subscription_id=subscription["id"],
                ),
            )
        )

    assert StripeEvent.objects.filter(processed_at__isnull=True).count() == 0
    account = BillingAccount.objects.get(tenant=archived)
    assert (account.subscription_status, account.plan.code) == ("canceled", "free")
    assert mail.outbox == []
    skipped = [r for r in caplog.records if r.getMessage().startswith("billing e-mail skipped")]
    assert [r.step for r in skipped] == ["past_due", "ended"]  # type: ignore[attr-defined]
    assert Tenant.objects.get(pk=tenant_id).status == Tenant.Status.ARCHIVED


def stored_event(kind: str, *, attempts: int, age: timedelta) -> StripeEvent:
    payload = event(kind, {"object": "customer", "id": "cus_retry"})
    stored = StripeEventFactory.create(
        event_id=payload["id"], type=kind, payload=payload, attempts=attempts
    )
    StripeEvent.objects.filter(pk=stored.pk).update(received_at=timezone.now() - age)
    return stored


def test_events_retry_puts_failing_events_last_and_gives_up_on_them(
    db: None, stripe_fake: FakeStripe, eager_tasks: None
) -> None:
    # given an old event that has failed too often, an older one that failed a few times,
    # and a newer one whose message was lost
    abandoned = stored_event(
        "customer.created", attempts=webhooks.EVENT_MAX_ATTEMPTS, age=timedelta(days=3)
    )
    failing = stored_event("customer.created", attempts=3, age=timedelta(days=2))
    lost = stored_event("customer.created", attempts=0, age=timedelta(hours=1))

    # when one batch has room for one event, the one with fewest attempts goes first
    assert webhooks.stripe_events_retry(limit=1) == 1
    lost.refresh_from_db()
    failing.refresh_from_db()
    assert lost.processed_at is not None
    assert failing.processed_at is None

    # then the others, except the one that reached the cap
    assert webhooks.stripe_events_retry() == 1
    failing.refresh_from_db()
    abandoned.refresh_from_db()
    assert failing.processed_at is not None
    assert (abandoned.processed_at, abandoned.attempts) == (None, webhooks.EVENT_MAX_ATTEMPTS)
    assert webhooks.stripe_events_retry() == 0


def test_the_failure_that_reaches_the_cap_is_logged_as_an_error(
    owner_a: Client,
    stripe_fake: FakeStripe,
    pro_plan: Plan,
    tenant_a: Tenant,
    public_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    session = subscribed(stripe_fake, owner_a, tenant_a)
    completed = event("checkout.session.completed", session)
    with django_capture_on_commit_callbacks(execute=False):
        post_event(public_client, completed)
    StripeEvent.objects.update(attempts=webhooks.EVENT_MAX_ATTEMPTS - 1)

    def refused(**kwargs: Any) -> Any:
        raise StripeRequestError("No such customer", request_id="req_1")

    monkeypatch.setattr(gateway, "subscriptions_for_customer", refused)
    with (
        caplog.at_level(logging.WARNING, logger="shared_apps.billing.webhooks"),
        pytest.raises(StripeRequestError),
    ):
        webhooks.stripe_event_process(event_id=completed["id"])

    [record] = [r for r in caplog.records if r.getMessage() == "stripe event abandoned"]
    assert record.levelno == logging.ERROR
    assert record.event_id == completed["id"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "timestamp_shift"),
    [
        ("[1, 2, 3]", 0),  # validly signed, but not an object
        ('"a string"', 0),
        ("null", 0),
        (json.dumps(event("invoice.paid", {"object": "invoice"})), 3600),  # from the future
        (json.dumps(event("invoice.paid", {"object": "invoice"})), -3600),  # stale
    ],
)
def test_a_signed_body_that_is_no_event_or_out_of_tolerance_is_refused(
    public_client: Client, stripe_fake: FakeStripe, body: str, timestamp_shift: int
) -> None:
    header = signature(body, timestamp=int(time.time()) + timestamp_shift)
    response = public_client.post(
        WEBHOOK, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert (response.status_code, response.json()["code"]) == (400, "signature_invalid")
    assert not StripeEvent.objects.exists()
