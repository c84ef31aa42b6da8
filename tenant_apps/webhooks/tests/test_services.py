from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from core.errors import AppError
from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.apikeys.tests.helpers import owner_of
from tenant_apps.members.services import member_role_change
from tenant_apps.projects.services import project_create, project_update
from tenant_apps.webhooks import services
from tenant_apps.webhooks.errors import (
    WebhookEndpointDisabledError,
    WebhookEndpointLimitReachedError,
    WebhookEventsInvalidError,
    WebhookUrlInvalidError,
    WebhookUrlNotAllowedError,
)
from tenant_apps.webhooks.models import Delivery, Endpoint
from tenant_apps.webhooks.signing import secret_generate
from tests.factories import DeliveryFactory, EndpointFactory, UserFactory
from tests.webhook_receiver import WebhookReceiver, documented_verify

Receivers = Callable[..., WebhookReceiver]


def audit_actions(tenant: Tenant, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with public_context():
        return [
            (record.actor, record.outcome, record.detail)
            for record in AuditRecord.objects.filter(tenant_id=tenant.id, action=action).order_by(
                "pk"
            )
        ]


# ENDPOINTS ------------------------------------------------------------------------------


def test_an_owner_adds_an_endpoint_and_gets_its_secret_once(tenant_a: Tenant) -> None:
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        endpoint, secret = services.endpoint_create(
            actor=owner,
            url=" https://93.184.216.34/hooks?token=s3cret ",
            events=["task.created", "project.created", "task.created"],
            description="CRM\nsync",
        )
        stored = Endpoint.objects.get()
    assert secret.startswith("whsec_")
    assert stored.secret == secret
    assert (stored.url, stored.events, stored.description) == (
        "https://93.184.216.34/hooks?token=s3cret",
        ["project.created", "task.created"],
        "CRM sync",
    )
    assert stored.created_by_id == owner.pk
    # The trail has the host alone: the query holds the receiver's token.
    assert audit_actions(tenant_a, "webhook.endpoint_create") == [
        (
            "user:owner@alpha.test",
            "succeeded",
            {"host": "93.184.216.34", "endpoint_id": endpoint.pk},
        )
    ]


@pytest.mark.parametrize("role", [User.Role.ADMIN, User.Role.MEMBER])
def test_only_owners_manage_webhooks(tenant_a: Tenant, role: str) -> None:
    with tenant_context(tenant_a):
        person = UserFactory.create(role=role)
        endpoint = EndpointFactory.create()
        with pytest.raises(PermissionDenied):
            services.endpoint_create(
                actor=person, url="https://93.184.216.34/", events=["project.created"]
            )
        for change in (
            services.endpoint_disable,
            services.endpoint_delete,
            services.endpoint_secret_rotate,
        ):
            with pytest.raises(PermissionDenied):
                change(actor=person, endpoint=endpoint)
        assert list(Endpoint.objects.values_list("pk", "disabled_at", "secret")) == [
            (endpoint.pk, None, endpoint.secret)
        ]


@pytest.mark.parametrize(
    ("url", "events", "error", "code"),
    [
        (
            "http://93.184.216.34/",
            ["project.created"],
            WebhookUrlInvalidError,
            "webhook_url_invalid",
        ),
        (
            "https://169.254.169.254/latest",
            ["project.created"],
            WebhookUrlNotAllowedError,
            "webhook_url_not_allowed",
        ),
        ("https://93.184.216.34/", [], WebhookEventsInvalidError, "webhook_events_invalid"),
        (
            "https://93.184.216.34/",
            ["project.deleted"],
            WebhookEventsInvalidError,
            "webhook_events_invalid",
        ),
    ],
)
def test_refused_endpoints_are_not_stored_and_the_refusal_is_audited(
    tenant_a: Tenant,
    settings: Any,
    url: str,
    events: list[str],
    error: type[AppError],
    code: str,
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = settings.WEBHOOKS_ALLOW_PLAIN_HTTP = False
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        with pytest.raises(error) as refused:
            services.endpoint_create(actor=owner, url=url, events=events)
        assert refused.value.code == code
        assert not Endpoint.objects.exists()
    [(_actor, outcome, detail)] = audit_actions(tenant_a, "webhook.endpoint_create")
    assert (outcome, detail["error"]) == ("failed", code)


def test_a_workspace_has_at_most_the_configured_endpoints(tenant_a: Tenant, settings: Any) -> None:
    settings.WEBHOOKS_MAX_ENDPOINTS = 2
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        EndpointFactory.create_batch(2)
        with pytest.raises(WebhookEndpointLimitReachedError):
            services.endpoint_create(
                actor=owner, url="https://93.184.216.34/", events=["project.created"]
            )
        assert Endpoint.objects.count() == 2


def test_rotating_keeps_the_old_secret_signing_for_a_while(tenant_a: Tenant) -> None:
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        endpoint = EndpointFactory.create()
        old = endpoint.secret
        rotated, new = services.endpoint_secret_rotate(actor=owner, endpoint=endpoint)
        assert (rotated.secret, rotated.previous_secret) == (new, old)
        assert rotated.signing_secrets() == [new, old]
        rotated.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
        assert rotated.signing_secrets() == [new]
    assert [outcome for _, outcome, _ in audit_actions(tenant_a, "webhook.endpoint_rotate")] == [
        "succeeded"
    ]


def test_disabling_fails_waiting_deliveries_and_enabling_starts_afresh(tenant_a: Tenant) -> None:
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        endpoint = EndpointFactory.create(failure_count=3, failing_since=timezone.now())
        waiting = DeliveryFactory.create(endpoint=endpoint)
        services.endpoint_disable(actor=owner, endpoint=endpoint)
        services.endpoint_disable(actor=owner, endpoint=endpoint)  # twice: no error
        endpoint.refresh_from_db()
        waiting.refresh_from_db()
        assert (endpoint.is_enabled, endpoint.disabled_reason) == (False, "by_owner")
        assert (waiting.status, waiting.next_attempt_at) == ("failed", None)

        services.endpoint_enable(actor=owner, endpoint=endpoint)
        endpoint.refresh_from_db()
        assert (endpoint.is_enabled, endpoint.failure_count, endpoint.failing_since) == (
            True,
            0,
            None,
        )


def test_deleting_an_endpoint_deletes_its_log(tenant_a: Tenant) -> None:
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        endpoint = EndpointFactory.create(url="https://hooks.example.com/in?token=x")
        DeliveryFactory.create(endpoint=endpoint)
        services.endpoint_delete(actor=owner, endpoint=endpoint)
        assert (Endpoint.objects.count(), Delivery.objects.count()) == (0, 0)
    [(_, outcome, detail)] = audit_actions(tenant_a, "webhook.endpoint_delete")
    assert (outcome, detail["host"]) == ("succeeded", "hooks.example.com")


# EVENTS BECOME DELIVERIES ---------------------------------------------------------------


def test_an_event_makes_one_delivery_per_listening_endpoint_after_commit(
    tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        listening = EndpointFactory.create(events=["project.created"])
        EndpointFactory.create(events=["task.created"])  # another event
        EndpointFactory.create(disabled_at=timezone.now(), disabled_reason="by_owner")
        with django_capture_on_commit_callbacks() as callbacks:
            project = project_create(actor=owner, name="Apollo", description="Moon")
        [delivery] = Delivery.objects.all()
    assert delivery.endpoint_id == listening.pk
    assert (delivery.status, delivery.attempts, delivery.event_type) == (
        "pending",
        0,
        "project.created",
    )
    body = json.loads(delivery.body)
    assert body["id"] == delivery.webhook_id == f"msg_{delivery.event_id.hex}"
    assert body["type"] == "project.created"
    assert body["timestamp"].endswith("Z")
    assert body["workspace"] == {"id": str(tenant_a.id), "subdomain": "alpha"}
    assert body["data"] == {
        "id": project.pk,
        "name": "Apollo",
        "description": "Moon",
        "status": "active",
        "created_at": body["data"]["created_at"],
        "updated_at": body["data"]["updated_at"],
    }
    # The dashboard's cache, and the one delivery's task.
    assert len(callbacks) == 2


def test_a_change_that_rolls_back_sends_nothing(tenant_a: Tenant) -> None:
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        EndpointFactory.create(events=["project.created"])

        def change_then_fail() -> None:
            with transaction.atomic():
                project_create(actor=owner, name="Never")
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            change_then_fail()
        assert not Delivery.objects.exists()


def test_member_events_carry_the_person(tenant_a: Tenant) -> None:
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        EndpointFactory.create(events=["member.role_changed"])
        member = UserFactory.create(role=User.Role.MEMBER, email="kim@alpha.test")
        member_role_change(actor=owner, member=member, role=User.Role.ADMIN)
        [delivery] = Delivery.objects.all()
    assert json.loads(delivery.body)["data"] == {
        "id": member.pk,
        "email": "kim@alpha.test",
        "full_name": member.full_name,
        "role": "admin",
        "is_active": True,
    }


def test_events_of_b_never_reach_endpoints_of_a(tenant_a: Tenant, tenant_b: Tenant) -> None:
    with tenant_context(tenant_a):
        EndpointFactory.create(events=["project.created", "project.updated"])
    with tenant_context(tenant_b):
        project = project_create(actor=owner_of(tenant_b, "owner@beta.test"), name="Beta's")
        project_update(
            actor=owner_of(tenant_b, "owner@beta.test"), project=project, name="B", description=""
        )
        assert not Delivery.objects.exists()
    with tenant_context(tenant_a):
        assert not Delivery.objects.exists()


# ATTEMPTS -------------------------------------------------------------------------------


def _deliver_to(receiver: WebhookReceiver, **endpoint: Any) -> Delivery:
    endpoint.setdefault("url", receiver.url)
    return DeliveryFactory.create(endpoint=EndpointFactory.create(**endpoint))


def test_a_delivery_arrives_signed_as_the_api_guide_says(
    tenant_a: Tenant, webhook_receivers: Receivers
) -> None:
    receiver = webhook_receivers(200)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver)
        services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        delivery.refresh_from_db()
        secret = delivery.endpoint.secret
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None
    [request] = receiver.received
    assert request.path == "/hooks"
    assert request.body == delivery.body.encode()
    assert request.headers["webhook-id"] == delivery.webhook_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "TenantPlatform-Webhooks/1.0"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert "traceparent" not in request.headers
    assert documented_verify()(secret, request.headers, request.body)


def test_a_failed_attempt_is_retried_later_not_waited_for(
    tenant_a: Tenant, webhook_receivers: Receivers, django_capture_on_commit_callbacks: Any
) -> None:
    receiver = webhook_receivers(500)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver)
        before = timezone.now()
        with django_capture_on_commit_callbacks() as callbacks:
            services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        delivery.refresh_from_db()
        endpoint = Endpoint.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error == "The receiver answered 500."
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 27 <= wait <= 34  # 30 s, ±10%
    assert len(callbacks) == 1  # the next attempt, queued with that countdown
    assert (endpoint.failure_count, endpoint.failing_since is not None) == (1, True)


def test_an_attempt_runs_once_however_often_its_message_arrives(
    tenant_a: Tenant, webhook_receivers: Receivers
) -> None:
    receiver = webhook_receivers(204)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver)
        assert services.delivery_attempt(delivery_id=delivery.pk, attempt=1) is not None
        assert services.delivery_attempt(delivery_id=delivery.pk, attempt=1) is None
        assert services.delivery_attempt(delivery_id=delivery.pk + 1000, attempt=1) is None
    assert len(receiver.received) == 1


def test_the_last_attempt_that_fails_fails_the_delivery(
    tenant_a: Tenant, webhook_receivers: Receivers, settings: Any
) -> None:
    receiver = webhook_receivers(503)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver)
        Delivery.objects.filter(pk=delivery.pk).update(attempts=settings.WEBHOOKS_MAX_ATTEMPTS - 1)
        services.delivery_attempt(delivery_id=delivery.pk, attempt=settings.WEBHOOKS_MAX_ATTEMPTS)
        delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == ("failed", None)


def test_a_hanging_receiver_times_out(tenant_a: Tenant, webhook_receivers: Receivers) -> None:
    receiver = webhook_receivers(hang=True)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver)
        services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("pending", None)
    assert delivery.last_error == "The receiver did not answer in time."


def test_redirects_are_failures_and_never_followed(
    tenant_a: Tenant, webhook_receivers: Receivers
) -> None:
    receiver = webhook_receivers(302)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver)
        services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("pending", 302)
    assert len(receiver.received) == 1


def test_an_address_refused_at_send_time_is_a_failed_attempt(
    tenant_a: Tenant, webhook_receivers: Receivers, settings: Any
) -> None:
    receiver = webhook_receivers(204)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver)
        settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False  # e.g. DNS now answers loopback
        services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        delivery.refresh_from_db()
    assert receiver.received == []
    assert delivery.status == "pending"
    assert "127.0.0.1, a loopback address" in delivery.last_error


def test_the_connection_goes_to_the_address_that_was_checked(
    tenant_a: Tenant, webhook_receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a second look-up would answer elsewhere; there is none."""
    import socket

    receiver = webhook_receivers(204)
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        answer = "127.0.0.1" if len(lookups) == 1 else "192.0.2.1"  # then unroutable
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver, url=f"http://hooks.rebind.test:{receiver.port}/hooks")
        services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert lookups == ["hooks.rebind.test"]
    assert receiver.received[0].headers["host"] == f"hooks.rebind.test:{receiver.port}"


def test_retry_delays_grow_by_four_up_to_an_hour(settings: Any) -> None:
    expected = [30, 120, 480, 1920, 3600, 3600, 3600]
    for attempt, seconds in enumerate(expected, start=1):
        delay = services.retry_delay_seconds(attempt)
        assert seconds * 0.9 - 1 <= delay <= seconds * 1.1 + 1
    assert 540 <= services.retry_delay_seconds(1, retry_after=600) <= 660
    assert services.retry_delay_seconds(1, retry_after=86400) <= 3600 * 1.1


# DISABLING ------------------------------------------------------------------------------


def test_an_endpoint_failing_long_enough_is_disabled_and_the_owners_told(
    tenant_a: Tenant,
    webhook_receivers: Receivers,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    receiver = webhook_receivers(500)
    with tenant_context(tenant_a):
        UserFactory.create(role=User.Role.OWNER, email="second-owner@alpha.test")
        UserFactory.create(role=User.Role.ADMIN, email="admin@alpha.test")
        endpoint = EndpointFactory.create(
            url=f"{receiver.url}?token=hidden",
            failure_count=settings.WEBHOOKS_DISABLE_AFTER_FAILURES - 1,
            failing_since=timezone.now()
            - timedelta(hours=settings.WEBHOOKS_DISABLE_AFTER_HOURS, minutes=1),
        )
        delivery = DeliveryFactory.create(endpoint=endpoint)
        waiting = DeliveryFactory.create(endpoint=endpoint)
        with django_capture_on_commit_callbacks(execute=True):
            services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        endpoint.refresh_from_db()
        delivery.refresh_from_db()
        waiting.refresh_from_db()
    assert (endpoint.is_enabled, endpoint.disabled_reason) == (False, "failing")
    assert (delivery.status, waiting.status) == ("failed", "failed")
    [(actor, outcome, detail)] = audit_actions(tenant_a, "webhook.endpoint_disable")
    assert (actor, outcome, detail["reason"]) == ("system:webhooks", "succeeded", "failing")
    [message] = mail.outbox
    assert sorted(message.to) == ["owner@alpha.test", "second-owner@alpha.test"]
    assert message.subject == "A webhook endpoint of Alpha Inc was disabled"
    assert f"http://alpha.localhost/settings/webhooks/{endpoint.pk}/" in message.body
    assert "hidden" not in message.body  # the URL's query may be the receiver's token


def test_many_failures_in_a_short_outage_do_not_disable(
    tenant_a: Tenant, webhook_receivers: Receivers, settings: Any
) -> None:
    receiver = webhook_receivers(500)
    with tenant_context(tenant_a):
        endpoint = EndpointFactory.create(
            url=receiver.url, failure_count=50, failing_since=timezone.now() - timedelta(hours=1)
        )
        delivery = DeliveryFactory.create(endpoint=endpoint)
        services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        endpoint.refresh_from_db()
    assert (endpoint.is_enabled, endpoint.failure_count) == (True, 51)
    assert mail.outbox == []


def test_410_gone_disables_at_once(tenant_a: Tenant, webhook_receivers: Receivers) -> None:
    receiver = webhook_receivers(410)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver)
        services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        endpoint = Endpoint.objects.get()
    assert (endpoint.is_enabled, endpoint.disabled_reason) == (False, "gone")


def test_a_success_ends_a_run_of_failures(tenant_a: Tenant, webhook_receivers: Receivers) -> None:
    receiver = webhook_receivers(204)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver, failure_count=7, failing_since=timezone.now())
        services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        endpoint = Endpoint.objects.get()
    assert (endpoint.failure_count, endpoint.failing_since) == (0, None)


def test_a_delivery_to_a_disabled_endpoint_is_not_sent(
    tenant_a: Tenant, webhook_receivers: Receivers
) -> None:
    receiver = webhook_receivers(204)
    with tenant_context(tenant_a):
        delivery = _deliver_to(receiver)
        Endpoint.objects.update(disabled_at=timezone.now(), disabled_reason="by_owner")
        services.delivery_attempt(delivery_id=delivery.pk, attempt=1)
        delivery.refresh_from_db()
    assert receiver.received == []
    assert (delivery.status, delivery.attempts) == ("failed", 0)


# SEND AGAIN AND UPKEEP ------------------------------------------------------------------


def test_send_again_repeats_the_event_as_a_new_delivery(
    tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        first = DeliveryFactory.create(status="failed", attempts=8)
        with django_capture_on_commit_callbacks() as callbacks:
            again = services.delivery_resend(actor=owner, delivery=first)
    assert (again.event_id, again.body, again.resent_from_id) == (
        first.event_id,
        first.body,
        first.pk,
    )
    assert (again.status, again.attempts) == ("pending", 0)
    assert len(callbacks) == 1


def test_send_again_to_a_disabled_endpoint_is_refused(tenant_a: Tenant) -> None:
    owner = owner_of(tenant_a)
    with tenant_context(tenant_a):
        endpoint = EndpointFactory.create(disabled_at=timezone.now(), disabled_reason="failing")
        first = DeliveryFactory.create(endpoint=endpoint, status="failed")
        with pytest.raises(WebhookEndpointDisabledError):
            services.delivery_resend(actor=owner, delivery=first)
        assert Delivery.objects.count() == 1


def test_maintenance_requeues_lost_deliveries_and_forgets_old_ones(
    tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    now = timezone.now()
    with tenant_context(tenant_a):
        lost = DeliveryFactory.create(next_attempt_at=now - timedelta(hours=1), attempts=2)
        DeliveryFactory.create(next_attempt_at=now + timedelta(minutes=5))  # waiting its turn
        DeliveryFactory.create(next_attempt_at=now - timedelta(minutes=1))  # just due
        old = DeliveryFactory.create(status="delivered", next_attempt_at=None)
        Delivery.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=31))
        with django_capture_on_commit_callbacks() as callbacks:
            assert services.deliveries_maintain() == {"requeued": 1, "forgotten": 1}
        assert not Delivery.objects.filter(pk=old.pk).exists()
        assert Delivery.objects.filter(pk=lost.pk).exists()
    assert len(callbacks) == 1


def test_secrets_are_fresh_per_endpoint(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        first, second = EndpointFactory.create(), EndpointFactory.create()
    assert first.secret != second.secret
    assert secret_generate() not in (first.secret, second.secret)
