"""Webhook processing in a real Celery worker process, against the fake Stripe over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from shared_apps.billing.models import BillingAccount, Plan, StripeEvent
from shared_apps.tenants.models import Tenant
from tests.billing.conftest import WEBHOOK
from tests.billing.fake_stripe import FakeStripe, event, signature
from tests.factories import PlanFactory
from tests.infra import wait_for


@pytest.fixture
def billing_committed(
    session_tenants: tuple[Tenant, Tenant], django_db_blocker: Any
) -> Iterator[tuple[Tenant, Plan]]:
    """Committed rows the worker can see; removed afterwards."""
    with django_db_blocker.unblock():
        plan = PlanFactory.create(
            code="pro-worker", name="Pro", stripe_price_id="price_pro_worker", price_minor=2900
        )
        try:
            yield session_tenants[0], plan
        finally:
            StripeEvent.objects.all().delete()
            BillingAccount.objects.filter(tenant__in=session_tenants).delete()
            plan.delete()


def test_webhook_is_processed_once_by_the_real_worker(
    celery_worker_log: Path,
    billing_committed: tuple[Tenant, Plan],
    stripe_fake: FakeStripe,
    django_db_blocker: Any,
) -> None:
    tenant, plan = billing_committed
    subscription = stripe_fake.subscription_put(
        customer="cus_worker",
        status="active",
        price=plan.stripe_price_id,
        tenant_id=str(tenant.id),
    )
    created = event("customer.subscription.created", subscription)
    body = json.dumps(created)
    root = Client(HTTP_HOST="localhost")

    def post() -> Any:
        with django_db_blocker.unblock():
            return root.post(
                WEBHOOK,
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature(body),
            )

    assert post().status_code == 200

    def processed() -> StripeEvent | None:
        with django_db_blocker.unblock():
            return StripeEvent.objects.filter(
                event_id=created["id"], processed_at__isnull=False
            ).first()

    wait_for(processed, message="the worker did not process the event")
    with django_db_blocker.unblock():
        account = BillingAccount.objects.get(tenant=tenant)
        assert (account.plan_id, account.subscription_status) == (plan.pk, "active")
        assert account.stripe_customer_id == "cus_worker"
    listed = [call for call in stripe_fake.api_calls() if call.path == "/v1/subscriptions"]
    assert len(listed) == 1  # the worker, not this process, asked the fake

    # a replay of the processed event is stored as a delivery and queues nothing
    assert post().status_code == 200
    with django_db_blocker.unblock():
        stored = StripeEvent.objects.get(event_id=created["id"])
    assert (stored.deliveries, stored.attempts) == (2, 1)
    assert [c for c in stripe_fake.api_calls() if c.path == "/v1/subscriptions"] == listed
    worker_log = celery_worker_log.read_text()
    assert "stripe event processed" in worker_log
