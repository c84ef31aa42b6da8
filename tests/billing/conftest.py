"""Billing tests: a local fake of Stripe's API, signed webhook deliveries, eager tasks.

The fake runs once per session (`stripe_server` in tests/infra.py, which also points the
test worker process at it). The test process keeps the settings it started with (no keys:
billing off) until a test asks for `stripe_fake`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from config.celery import app
from shared_apps.accounts.models import User
from shared_apps.billing.models import Plan
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tests.billing.fake_stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, signature
from tests.factories import PlanFactory

WEBHOOK = "/billing/stripe/webhook/"


@pytest.fixture
def stripe_fake(settings: Any, stripe_server: FakeStripe) -> Iterator[FakeStripe]:
    """Billing on, pointed at the fake; the fake starts empty."""
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    stripe_server.reset()
    yield stripe_server
    stripe_server.reset()


@pytest.fixture
def stripe_off(settings: Any, stripe_server: FakeStripe) -> FakeStripe:
    """The embedded default: no keys. The fake is still listening, to prove nobody calls it."""
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.STRIPE_API_BASE = stripe_server.url
    stripe_server.reset()
    return stripe_server


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks queued on commit run at once in this process (the worker test uses a real one)."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


# The paid plan the billing tests buy (a Stripe price of the fake).
PRO_PLAN: dict[str, Any] = {
    "code": "pro",
    "name": "Pro",
    "stripe_price_id": "price_pro_monthly",
    "price_minor": 2900,
    "currency": "usd",
    "max_seats": 25,
    "max_projects": None,
    "max_storage_bytes": None,
    "trial_days": 0,
    "sort_order": 1,
}


@pytest.fixture
def pro_plan(db: None) -> Plan:
    return PlanFactory.create(**PRO_PLAN)


def owner_of(tenant: Tenant) -> User:
    with tenant_context(tenant):
        return User.objects.get(email=f"owner@{tenant.subdomain}.test")


def signed_in(tenant: Tenant, user: User | None = None) -> Client:
    client = Client(HTTP_HOST=f"{tenant.subdomain}.localhost")
    with tenant_context(tenant):
        client.force_login(user or User.objects.get(email=f"owner@{tenant.subdomain}.test"))
    return client


@pytest.fixture
def owner_a(tenant_a: Tenant) -> Client:
    return signed_in(tenant_a)


@pytest.fixture
def owner_b(tenant_b: Tenant) -> Client:
    return signed_in(tenant_b)


def post_event(client: Client, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET) -> Any:
    body = json.dumps(event)
    return client.post(
        WEBHOOK,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature(body, secret),
    )


@pytest.fixture
def deliver(
    public_client: Client, eager_tasks: None, django_capture_on_commit_callbacks: Any
) -> Callable[[dict[str, Any]], Any]:
    """Deliver a signed event to the webhook and run what it queues, as Stripe then the worker."""

    def send(event: dict[str, Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_event(public_client, event)
        assert response.status_code == 200, response.content
        return response

    return send
