"""Webhooks through the real worker: signed deliveries reach loopback receivers, one
workspace's hanging endpoint does not hold up another's, and failing endpoints are disabled
with their owners told by e-mail."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.projects.services import project_create
from tenant_apps.webhooks.models import Delivery, Endpoint
from tests.factories import EndpointFactory
from tests.infra import wait_for
from tests.webhook_receiver import WebhookReceiver, documented_verify

pytestmark = pytest.mark.usefixtures("celery_worker_log")

Receivers = Callable[..., WebhookReceiver]


@pytest.fixture
def committed_webhooks(committed: tuple[Tenant, Tenant]) -> Iterator[tuple[Tenant, Tenant]]:
    """Committed rows the worker can see; both workspaces' endpoints are removed after."""
    yield committed
    for tenant in committed:
        with tenant_context(tenant):
            Endpoint.objects.all().delete()


def owner(tenant: Tenant) -> User:
    return User.objects.filter(role=User.Role.OWNER).order_by("pk").first()  # type: ignore[return-value]


def delivery_of(tenant: Tenant, endpoint: Endpoint, **state: Any) -> Delivery | None:
    with tenant_context(tenant):
        return Delivery.objects.filter(endpoint=endpoint, **state).first()


def test_a_project_created_in_a_reaches_as_endpoint_signed_and_no_other(
    committed_webhooks: tuple[Tenant, Tenant], webhook_receivers: Receivers
) -> None:
    tenant_a, tenant_b = committed_webhooks
    receiver_a, receiver_b = webhook_receivers(200), webhook_receivers(200)
    with tenant_context(tenant_a):
        endpoint_a = EndpointFactory.create(url=receiver_a.url, events=["project.created"])
        client = Client(HTTP_HOST="alpha.localhost")
        client.force_login(owner(tenant_a))
    with tenant_context(tenant_b):
        endpoint_b = EndpointFactory.create(url=receiver_b.url, events=["project.created"])

    assert client.post("/projects/new/", {"name": "Hooked", "description": ""}).status_code == 302

    delivered = wait_for(
        lambda: delivery_of(tenant_a, endpoint_a, status="delivered"),
        message="the worker did not deliver A's event",
    )
    [request] = receiver_a.received
    assert documented_verify()(endpoint_a.secret, request.headers, request.body)
    body = json.loads(request.body)
    assert (body["type"], body["data"]["name"], body["workspace"]["subdomain"]) == (
        "project.created",
        "Hooked",
        "alpha",
    )
    assert request.headers["webhook-id"] == body["id"] == delivered.webhook_id
    assert "traceparent" not in request.headers  # the worker traces, but not to receivers
    assert (delivered.attempts, delivered.last_status_code) == (1, 200)
    assert receiver_b.received == []
    with tenant_context(tenant_b):
        assert not Delivery.objects.filter(endpoint=endpoint_b).exists()


def test_as_hanging_endpoint_does_not_hold_up_bs_delivery(
    committed_webhooks: tuple[Tenant, Tenant], webhook_receivers: Receivers
) -> None:
    tenant_a, tenant_b = committed_webhooks
    hanging, prompt = webhook_receivers(hang=True), webhook_receivers(204)
    with tenant_context(tenant_a):
        endpoint_a = EndpointFactory.create(url=hanging.url, events=["project.created"])
        project_create(actor=owner(tenant_a), name="Slow lane")
    with tenant_context(tenant_b):
        endpoint_b = EndpointFactory.create(url=prompt.url, events=["project.created"])
        project_create(actor=owner(tenant_b), name="Fast lane")

    b_delivered = wait_for(
        lambda: delivery_of(tenant_b, endpoint_b, status="delivered"),
        message="B's delivery waited for A's endpoint",
    )
    a_waiting = wait_for(
        lambda: delivery_of(tenant_a, endpoint_a, attempts=1, status="pending", last_error__gt=""),
        message="A's attempt did not time out",
    )
    # A's attempt gave up after its short timeout and its retry waits in the broker, not
    # in the worker: B was delivered long before A's next attempt is due.
    assert a_waiting.last_error == "The receiver did not answer in time."
    assert a_waiting.next_attempt_at > b_delivered.delivered_at + timedelta(seconds=20)
    assert len(hanging.received) == 1
    assert [json.loads(r.body)["workspace"]["subdomain"] for r in prompt.received] == ["beta"]


def test_an_endpoint_failing_for_hours_is_disabled_and_the_owners_are_emailed(
    committed_webhooks: tuple[Tenant, Tenant],
    webhook_receivers: Receivers,
    smtp_sink: Any,
    settings: Any,
) -> None:
    tenant_a, _ = committed_webhooks
    failing = webhook_receivers(500)
    with tenant_context(tenant_a):
        endpoint = EndpointFactory.create(
            url=failing.url,
            events=["project.created"],
            failure_count=settings.WEBHOOKS_DISABLE_AFTER_FAILURES - 1,
            failing_since=timezone.now()
            - timedelta(hours=settings.WEBHOOKS_DISABLE_AFTER_HOURS + 1),
        )
        project_create(actor=owner(tenant_a), name="One failure too many")

    def disabled() -> Endpoint | None:
        with tenant_context(tenant_a):
            return Endpoint.objects.filter(pk=endpoint.pk, disabled_reason="failing").first()

    wait_for(disabled, message="the worker did not disable the failing endpoint")

    def mailed() -> Any:
        for message in list(smtp_sink.messages):
            if message["Subject"] == "A webhook endpoint of Alpha Inc was disabled":
                return message
        return None

    message = wait_for(mailed, message="the owners were not told")
    assert message["To"] == "owner@alpha.test"
    assert f"/settings/webhooks/{endpoint.pk}/" in message.get_body(("plain",)).get_content()
    assert delivery_of(tenant_a, endpoint).status == "failed"  # type: ignore[union-attr]
