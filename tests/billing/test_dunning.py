"""Dunning: a failed payment, the grace period, suspension through the lifecycle service,
and recovery when the payment arrives. Owners hear about each step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from itertools import product
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from shared_apps.audit.models import AuditRecord
from shared_apps.billing import dunning, notifications
from shared_apps.billing import stripe_gateway as gateway
from shared_apps.billing.dunning import billing_grace_expire
from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.mail.services import mail_render
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.services import tenant_suspend
from tests.billing.fake_stripe import FakeStripe, event
from tests.factories import BillingAccountFactory

Deliver = Callable[[dict[str, Any]], Any]


@pytest.fixture
def paying_a(
    owner_a: Client, stripe_fake: FakeStripe, pro_plan: Plan, tenant_a: Tenant, deliver: Deliver
) -> dict[str, Any]:
    """Tenant A on Pro, paid through checkout; returns the subscription."""
    owner_a.post("/billing/checkout/", {"plan": "pro"})
    [session_id] = stripe_fake.checkout_sessions
    session = stripe_fake.checkout_complete(session_id)
    deliver(event("checkout.session.completed", session))
    mail.outbox.clear()
    return stripe_fake.subscriptions[session["subscription"]]


def payment_fails(fake: FakeStripe, subscription: dict[str, Any], deliver: Deliver) -> None:
    fake.subscription_put(
        customer=subscription["customer"],
        status="past_due",
        price="price_pro_monthly",
        subscription_id=subscription["id"],
    )
    deliver(
        event(
            "invoice.payment_failed",
            {
                "object": "invoice",
                "id": "in_failed",
                "customer": subscription["customer"],
            },
        )
    )


def payment_succeeds(fake: FakeStripe, subscription: dict[str, Any], deliver: Deliver) -> None:
    fake.subscription_put(
        customer=subscription["customer"],
        status="active",
        price="price_pro_monthly",
        subscription_id=subscription["id"],
    )
    deliver(
        event(
            "invoice.paid",
            {
                "object": "invoice",
                "id": "in_paid",
                "customer": subscription["customer"],
            },
        )
    )


def status_of(tenant: Tenant) -> str:
    return Tenant.objects.get(pk=tenant.pk).status


def test_payment_failure_grace_suspension_and_recovery(
    paying_a: dict[str, Any],
    stripe_fake: FakeStripe,
    tenant_a: Tenant,
    owner_a: Client,
    client_a: Client,
    deliver: Deliver,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.BILLING_GRACE_DAYS = 3

    # given a failed payment: past due, grace period, e-mail; the site still works
    before = timezone.now()
    payment_fails(stripe_fake, paying_a, deliver)
    account = BillingAccount.objects.get(tenant=tenant_a)
    assert account.subscription_status == "past_due"
    assert account.plan.code == "pro"
    assert account.grace_ends_at is not None
    assert before + timedelta(days=3) <= account.grace_ends_at <= timezone.now() + timedelta(days=3)
    assert [(m.subject, m.to) for m in mail.outbox] == [
        ("Payment failed for Alpha Inc", ["owner@alpha.test"])
    ]
    assert b"Your last payment failed" in owner_a.get("/billing/").content

    # while the grace period runs, nothing is suspended
    with django_capture_on_commit_callbacks(execute=True):
        assert billing_grace_expire(now=timezone.now() + timedelta(days=2)) == 0
    assert status_of(tenant_a) == Tenant.Status.ACTIVE

    # when it runs out, the tenant is suspended through the lifecycle service
    with django_capture_on_commit_callbacks(execute=True):
        assert billing_grace_expire(now=account.grace_ends_at + timedelta(seconds=1)) == 1
        assert billing_grace_expire(now=account.grace_ends_at + timedelta(hours=1)) == 0
    assert status_of(tenant_a) == Tenant.Status.SUSPENDED
    assert BillingAccount.objects.get(tenant=tenant_a).is_suspended_by_billing
    assert (
        AuditRecord.objects.filter(
            action="tenant.suspend", actor="billing", tenant_id=tenant_a.id
        ).count()
        == 1
    )
    # suspended for non-payment: everything leads to the billing page, where owners pay
    suspended = client_a.get("/")
    assert (suspended.status_code, suspended["Location"]) == (302, "/billing/")
    assert b"pay-to-reopen" in owner_a.get("/billing/").content
    assert mail.outbox[-1].subject == "Alpha Inc is suspended"

    # a later payment resumes it
    payment_succeeds(stripe_fake, paying_a, deliver)
    assert status_of(tenant_a) == Tenant.Status.ACTIVE
    account.refresh_from_db()
    assert (account.past_due_since, account.grace_ends_at) == (None, None)
    assert not account.is_suspended_by_billing
    assert account.subscription_status == "active"
    assert [m.subject for m in mail.outbox] == [
        "Payment failed for Alpha Inc",
        "Alpha Inc is suspended",
        "Payment received for Alpha Inc",
        "Alpha Inc is active again",
    ]
    assert client_a.get("/login/").status_code == 200


def test_payment_within_grace_clears_past_due_without_suspension(
    paying_a: dict[str, Any], stripe_fake: FakeStripe, tenant_a: Tenant, deliver: Deliver
) -> None:
    payment_fails(stripe_fake, paying_a, deliver)
    payment_succeeds(stripe_fake, paying_a, deliver)

    account = BillingAccount.objects.get(tenant=tenant_a)
    assert account.grace_ends_at is None
    assert billing_grace_expire(now=timezone.now() + timedelta(days=30)) == 0
    assert status_of(tenant_a) == Tenant.Status.ACTIVE
    assert not AuditRecord.objects.filter(actor="billing").exists()


def test_grace_expiry_checks_stripe_first_so_a_late_event_costs_nothing(
    paying_a: dict[str, Any], stripe_fake: FakeStripe, tenant_a: Tenant, deliver: Deliver
) -> None:
    payment_fails(stripe_fake, paying_a, deliver)
    # paid, but the invoice.paid event has not arrived yet
    stripe_fake.subscription_put(
        customer=paying_a["customer"],
        status="active",
        price="price_pro_monthly",
        subscription_id=paying_a["id"],
    )
    assert billing_grace_expire(now=timezone.now() + timedelta(days=30)) == 0
    assert status_of(tenant_a) == Tenant.Status.ACTIVE


def test_billing_never_resumes_a_tenant_an_operator_suspended(
    paying_a: dict[str, Any],
    stripe_fake: FakeStripe,
    tenant_a: Tenant,
    deliver: Deliver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payment_fails(stripe_fake, paying_a, deliver)
    tenant_suspend(tenant=tenant_a, reason="abuse report", actor="ops@platform.test")
    grace_ends_at = BillingAccount.objects.get(tenant=tenant_a).grace_ends_at
    assert grace_ends_at is not None

    with django_capture_on_commit_callbacks(execute=True):
        assert billing_grace_expire(now=grace_ends_at + timedelta(seconds=1)) == 0
    payment_succeeds(stripe_fake, paying_a, deliver)

    assert status_of(tenant_a) == Tenant.Status.SUSPENDED
    account = BillingAccount.objects.get(tenant=tenant_a)
    assert account.grace_ends_at is None
    assert not account.is_suspended_by_billing
    assert not AuditRecord.objects.filter(actor="billing").exists()


def test_without_keys_grace_expiry_does_nothing(stripe_off: FakeStripe, tenant_a: Tenant) -> None:
    BillingAccountFactory.create(
        tenant=tenant_a,
        plan=Plan.objects.get(code="free"),
        subscription_status=BillingAccount.Status.PAST_DUE,
        past_due_since=timezone.now() - timedelta(days=30),
        grace_ends_at=timezone.now() - timedelta(days=20),
    )
    assert billing_grace_expire() == 0
    assert status_of(tenant_a) == Tenant.Status.ACTIVE
    assert stripe_off.api_calls() == []


def subscription_ends(fake: FakeStripe, subscription: dict[str, Any], deliver: Deliver) -> None:
    ended = fake.subscription_put(
        customer=subscription["customer"],
        status="canceled",
        price="price_pro_monthly",
        subscription_id=subscription["id"],
    )
    deliver(event("customer.subscription.deleted", ended))


def test_subscription_that_ends_while_suspended_reopens_on_the_free_plan(
    paying_a: dict[str, Any],
    stripe_fake: FakeStripe,
    tenant_a: Tenant,
    deliver: Deliver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payment_fails(stripe_fake, paying_a, deliver)
    grace_ends_at = BillingAccount.objects.get(tenant=tenant_a).grace_ends_at
    assert grace_ends_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert billing_grace_expire(now=grace_ends_at + timedelta(seconds=1)) == 1
    assert status_of(tenant_a) == Tenant.Status.SUSPENDED

    # Stripe gives up collecting and cancels the subscription
    subscription_ends(stripe_fake, paying_a, deliver)

    account = BillingAccount.objects.get(tenant=tenant_a)
    assert (account.subscription_status, account.plan.code) == ("canceled", "free")
    assert (account.past_due_since, account.grace_ends_at) == (None, None)
    assert not account.is_suspended_by_billing
    assert status_of(tenant_a) == Tenant.Status.ACTIVE
    assert [m.subject for m in mail.outbox] == [
        "Payment failed for Alpha Inc",
        "Alpha Inc is suspended",
        "The subscription for Alpha Inc has ended",
    ]
    body = mail.outbox[-1].body
    assert "the workspace is on the Free plan now" in body
    assert "it is open again on the Free plan" in body
    assert "payment arrived" not in body


def test_subscription_canceled_in_good_standing_says_it_ended_once(
    paying_a: dict[str, Any], stripe_fake: FakeStripe, tenant_a: Tenant, deliver: Deliver
) -> None:
    subscription_ends(stripe_fake, paying_a, deliver)
    deliver(event("customer.subscription.updated", stripe_fake.subscriptions[paying_a["id"]]))

    assert BillingAccount.objects.get(tenant=tenant_a).plan.code == "free"
    assert [m.subject for m in mail.outbox] == ["The subscription for Alpha Inc has ended"]
    assert "open again" not in mail.outbox[0].body


@pytest.mark.parametrize("fault", ["stripe_refuses", "bug"])
def test_one_failing_account_does_not_stop_suspensions_for_the_others(
    stripe_fake: FakeStripe,
    pro_plan: Plan,
    tenant_a: Tenant,
    tenant_b: Tenant,
    fault: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given two workspaces past their grace period; A's comes first
    now = timezone.now()
    for tenant, customer, ended in ((tenant_a, "cus_a", 2), (tenant_b, "cus_b", 1)):
        BillingAccountFactory.create(
            tenant=tenant,
            plan=pro_plan,
            stripe_customer_id=customer,
            subscription_status=BillingAccount.Status.PAST_DUE,
            past_due_since=now - timedelta(days=10),
            grace_ends_at=now - timedelta(days=ended),
        )
        stripe_fake.subscription_put(
            customer=customer, status="past_due", price="price_pro_monthly"
        )
    if fault == "stripe_refuses":  # e.g. A's customer was deleted in Stripe
        stripe_fake.fail_next("GET", "/v1/subscriptions", status=404, message="No such customer")
    else:
        real = gateway.subscriptions_for_customer

        def broken(*, customer_id: str) -> list[dict[str, Any]]:
            if customer_id == "cus_a":
                raise RuntimeError("unexpected")
            return real(customer_id=customer_id)

        monkeypatch.setattr(gateway, "subscriptions_for_customer", broken)

    # when the grace check runs
    with caplog.at_level(logging.WARNING, logger="shared_apps.billing.dunning"):
        assert billing_grace_expire(now=now) == 1

    # then B is suspended; A stays as it was, logged with its id, for the next run
    assert status_of(tenant_b) == Tenant.Status.SUSPENDED
    assert status_of(tenant_a) == Tenant.Status.ACTIVE
    assert not BillingAccount.objects.get(tenant=tenant_a).is_suspended_by_billing
    [failed] = [r for r in caplog.records if r.getMessage() == "grace check failed"]
    assert failed.tenant_id == str(tenant_a.id)  # type: ignore[attr-defined]
    [summary] = [r for r in caplog.records if r.getMessage() == "grace check incomplete"]
    assert (summary.due, summary.failed, summary.suspended) == (2, 1, 1)  # type: ignore[attr-defined]


def test_transitions_name_every_standing_and_change() -> None:
    assert set(dunning.TRANSITIONS) == set(product(dunning.Standing, dunning.Change))


@pytest.mark.parametrize("step", list(dunning.Step))
def test_every_step_has_its_email(step: dunning.Step) -> None:
    account = BillingAccount(
        tenant=Tenant(name="Alpha Inc", subdomain="alpha"),
        plan=Plan(name="Free"),
        grace_ends_at=timezone.now(),
    )
    mail_render(
        to=["owner@alpha.test"],
        template=f"billing/mail/{step.value}",
        context=notifications._context(account),
    )


def test_stripe_is_never_called_while_a_row_is_locked(
    paying_a: dict[str, Any],
    stripe_fake: FakeStripe,
    tenant_a: Tenant,
    owner_b: Client,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Each call to Stripe happens outside every transaction the platform opened (the test's
    own outer transaction aside): a slow Stripe holds a worker, never a lock."""
    from django.db import connection

    depths: list[int] = []
    real_call = gateway._call

    def probe(make: Callable[..., Any]) -> dict[str, Any]:
        depths.append(len(connection.savepoint_ids))
        return real_call(make)

    real_subscriptions = gateway.subscriptions_for_customer

    def subscriptions_probe(**kwargs: Any) -> list[dict[str, Any]]:
        depths.append(len(connection.savepoint_ids))
        return real_subscriptions(**kwargs)

    monkeypatch.setattr(gateway, "_call", probe)
    monkeypatch.setattr(gateway, "subscriptions_for_customer", subscriptions_probe)

    # B's first checkout: a customer (then stored), then a session
    assert owner_b.post("/billing/checkout/", {"plan": "pro"}).status_code == 302
    payment_fails(stripe_fake, paying_a, deliver)  # webhook processing re-reads Stripe
    grace_ends_at = BillingAccount.objects.get(tenant=tenant_a).grace_ends_at
    assert grace_ends_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert billing_grace_expire(now=grace_ends_at + timedelta(seconds=1)) == 1

    assert len(depths) >= 4  # customer, session, the webhook's read, the grace check's read
    assert set(depths) == {0}


def test_an_older_stripe_read_never_overwrites_a_newer_one(
    paying_a: dict[str, Any], tenant_a: Tenant
) -> None:
    account = BillingAccount.objects.get(tenant=tenant_a)
    newer = dunning.StripeState(subscriptions=[], read_at=timezone.now())
    older = dunning.StripeState(
        subscriptions=[{**paying_a, "status": "active"}],
        read_at=newer.read_at - timedelta(seconds=5),
    )
    dunning.billing_account_sync(account=account, state=newer)
    assert dunning.billing_account_sync(account=account, state=older) == []
    account.refresh_from_db()
    assert (account.subscription_status, account.synced_at) == ("", newer.read_at)
