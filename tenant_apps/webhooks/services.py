"""Workspace webhooks: endpoints owners register, and the deliveries the worker sends them.

An event (tenant_apps.events) becomes one delivery row per enabled endpoint that chose it,
written in the transaction of the change it describes and queued once that commits. The
worker makes one attempt per task message and schedules the next one with a countdown
(never sleeping), so a receiver that hangs or fails holds a worker for one short attempt
at a time, whichever workspace it belongs to.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.audit.services import audited
from shared_apps.mail.services import mail_send
from shared_apps.tenants.addresses import workspace_url
from tenancy import require_tenant
from tenancy.tasks import outgoing_headers
from tenant_apps.events.catalogue import EventType
from tenant_apps.events.services import Event, timestamp_iso
from tenant_apps.members import policy
from tenant_apps.webhooks.errors import (
    WebhookEndpointDisabledError,
    WebhookEndpointLimitReachedError,
    WebhookEventsInvalidError,
)
from tenant_apps.webhooks.models import Delivery, Endpoint
from tenant_apps.webhooks.signing import secret_generate, signature_header
from tenant_apps.webhooks.targets import target_resolve
from tenant_apps.webhooks.transport import Outcome, webhook_post

logger = logging.getLogger(__name__)

# Who the audit trail names when the platform itself disables a failing endpoint.
SYSTEM_ACTOR = "system:webhooks"
# How the owners' e-mail says why an endpoint was disabled.
DISABLED_BECAUSE = {
    Endpoint.DisabledReason.FAILING: "after failing repeatedly",
    Endpoint.DisabledReason.GONE: "because the receiver answered 410 Gone",
}


def _actor_label(actor: User) -> str:
    return f"user:{actor.email}"


def _host_of(url: str) -> str:
    """The host alone, for the audit trail: a URL's path or query may hold a token."""
    try:
        return (urlsplit(url.strip()).hostname or "")[:253]
    except ValueError:
        return ""


# ENDPOINTS ------------------------------------------------------------------------------


def endpoint_create(
    *, actor: User, url: str, events: list[str], description: str = ""
) -> tuple[Endpoint, str]:
    """Register an endpoint for `events`; return it with its signing secret (shown once).

    Audited as `webhook.endpoint_create`, with the URL's host.

    Raises:
        PermissionDenied: only owners manage webhooks.
        WebhookUrlInvalidError: not an https URL, or its host does not resolve.
        WebhookUrlNotAllowedError: the host is, or resolves to, a non-public address.
        WebhookEventsInvalidError: no event, or one the platform does not know.
        WebhookEndpointLimitReachedError: the workspace has `WEBHOOKS_MAX_ENDPOINTS` already.
    """
    policy.require(actor, "webhook.manage")
    url = url.strip()
    with audited(
        "webhook.endpoint_create",
        actor=_actor_label(actor),
        tenant=require_tenant(),
        host=_host_of(url),
    ) as entry:
        target_resolve(url)
        wanted = sorted(set(events))
        if not wanted or any(event not in EventType.values for event in wanted):
            raise WebhookEventsInvalidError("Choose at least one known event.", field="events")
        if Endpoint.objects.count() >= settings.WEBHOOKS_MAX_ENDPOINTS:
            raise WebhookEndpointLimitReachedError(
                f"A workspace may have {settings.WEBHOOKS_MAX_ENDPOINTS} webhook endpoints; "
                "delete one first."
            )
        secret = secret_generate()
        endpoint = Endpoint.objects.create(
            url=url,
            description=" ".join(description.split())[:120],
            events=wanted,
            secret=secret,
            created_by=actor,
        )
        entry.detail["endpoint_id"] = endpoint.pk
    logger.info("webhook endpoint created", extra={"endpoint_id": endpoint.pk})
    return endpoint, secret


def endpoint_secret_rotate(*, actor: User, endpoint: Endpoint) -> tuple[Endpoint, str]:
    """Give the endpoint a new signing secret; return it with the secret (shown once).

    The old secret keeps signing beside the new one for `WEBHOOKS_SECRET_OVERLAP_HOURS`, so
    the receiver can switch without refusing a delivery. Audited as `webhook.endpoint_rotate`.

    Raises:
        PermissionDenied: only owners manage webhooks.
    """
    policy.require(actor, "webhook.manage", endpoint)
    with audited(
        "webhook.endpoint_rotate",
        actor=_actor_label(actor),
        tenant=require_tenant(),
        endpoint_id=endpoint.pk,
    ):
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        secret = secret_generate()
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + timedelta(
            hours=settings.WEBHOOKS_SECRET_OVERLAP_HOURS
        )
        locked.secret = secret
        locked.save(
            update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
        )
    logger.info("webhook secret rotated", extra={"endpoint_id": endpoint.pk})
    return locked, secret


def endpoint_disable(*, actor: User, endpoint: Endpoint) -> Endpoint:
    """Stop sending to the endpoint; its pending deliveries fail. Twice is not an error.

    Audited as `webhook.endpoint_disable`.

    Raises:
        PermissionDenied: only owners manage webhooks.
    """
    policy.require(actor, "webhook.manage", endpoint)
    with audited(
        "webhook.endpoint_disable",
        actor=_actor_label(actor),
        tenant=require_tenant(),
        endpoint_id=endpoint.pk,
        reason=Endpoint.DisabledReason.BY_OWNER.value,
    ):
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.is_enabled:
            _disable(locked, reason=Endpoint.DisabledReason.BY_OWNER)
    logger.info("webhook endpoint disabled", extra={"endpoint_id": endpoint.pk})
    return locked


def endpoint_enable(*, actor: User, endpoint: Endpoint) -> Endpoint:
    """Send to the endpoint again, its count of failures cleared (events from now on).

    Audited as `webhook.endpoint_enable`.

    Raises:
        PermissionDenied: only owners manage webhooks.
    """
    policy.require(actor, "webhook.manage", endpoint)
    with audited(
        "webhook.endpoint_enable",
        actor=_actor_label(actor),
        tenant=require_tenant(),
        endpoint_id=endpoint.pk,
    ):
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.disabled_at, locked.disabled_reason = None, ""
        locked.failure_count, locked.failing_since = 0, None
        locked.save(
            update_fields=[
                "disabled_at",
                "disabled_reason",
                "failure_count",
                "failing_since",
                "updated_at",
            ]
        )
    logger.info("webhook endpoint enabled", extra={"endpoint_id": endpoint.pk})
    return locked


def endpoint_delete(*, actor: User, endpoint: Endpoint) -> None:
    """Remove the endpoint and its delivery log; queued attempts find nothing to send.

    Audited as `webhook.endpoint_delete`, with the URL's host.

    Raises:
        PermissionDenied: only owners manage webhooks.
    """
    policy.require(actor, "webhook.manage", endpoint)
    with audited(
        "webhook.endpoint_delete",
        actor=_actor_label(actor),
        tenant=require_tenant(),
        endpoint_id=endpoint.pk,
        host=_host_of(endpoint.url),
    ):
        Endpoint.objects.filter(pk=endpoint.pk).delete()
    logger.info("webhook endpoint deleted", extra={"endpoint_id": endpoint.pk})


def _disable(endpoint: Endpoint, *, reason: Endpoint.DisabledReason) -> None:
    """Disable a locked endpoint and fail what was still waiting to go to it."""
    now = timezone.now()
    endpoint.disabled_at, endpoint.disabled_reason = now, reason
    endpoint.save(update_fields=["disabled_at", "disabled_reason", "updated_at"])
    Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED,
        next_attempt_at=None,
        last_error="Not sent: the endpoint was disabled.",
    )


# DELIVERIES -----------------------------------------------------------------------------


def _enqueue(delivery_id: int, attempt: int, *, countdown: float = 0) -> None:
    """Queue the attempt once the transaction commits.

    A broker that is down is logged, never raised to the change that made the event: the
    delivery row is already committed, and the sweeper (`deliveries_maintain`) queues it.
    """
    from tenant_apps.webhooks.tasks import webhook_deliver_task

    headers = outgoing_headers()  # the tenant now; commit may come outside its context
    kwargs = {"delivery_id": delivery_id, "attempt": attempt}

    def send() -> None:
        try:
            webhook_deliver_task.apply_async(kwargs=kwargs, countdown=countdown, headers=headers)
        except Exception:
            logger.warning("could not queue webhook delivery", extra=kwargs)

    transaction.on_commit(send)


def event_body(event: Event) -> str:
    """The JSON every endpoint receives for `event` (docs/api.md, "Webhooks")."""
    workspace = require_tenant()
    payload = {
        "id": f"msg_{event.id.hex}",
        "type": event.type,
        "timestamp": timestamp_iso(event.occurred_at),
        "workspace": {"id": str(workspace.id), "subdomain": workspace.subdomain},
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def deliveries_record(event: Event) -> list[Delivery]:
    """Make one delivery of `event` per enabled endpoint that chose it, queued after commit.

    The events layer calls this inside the transaction of the change (one query when no
    endpoint listens), so a change that rolls back sends nothing.
    """
    endpoint_ids = list(
        Endpoint.objects.filter(disabled_at__isnull=True, events__contains=[event.type])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not endpoint_ids:
        return []
    body = event_body(event)
    now = timezone.now()
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            endpoint_id=endpoint_id,
            event_id=event.id,
            event_type=event.type,
            body=body,
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint_id in endpoint_ids
    )
    for delivery in deliveries:
        _enqueue(delivery.pk, 1)
    return deliveries


@transaction.atomic
def delivery_resend(*, actor: User, delivery: Delivery) -> Delivery:
    """Send the delivery's event to its endpoint once more, as a new delivery.

    The body and `webhook-id` are the same (a receiver that deduplicates handles it once);
    the timestamp and signature are new.

    Raises:
        PermissionDenied: only owners manage webhooks.
        WebhookEndpointDisabledError: enable the endpoint first.
    """
    policy.require(actor, "webhook.manage", delivery)
    endpoint = Endpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    if not endpoint.is_enabled:
        raise WebhookEndpointDisabledError(
            "This endpoint is disabled; enable it before sending again."
        )
    now = timezone.now()
    again = Delivery.objects.create(
        endpoint=endpoint,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        body=delivery.body,
        next_attempt_at=now,
        created_at=now,
        resent_from=delivery,
    )
    _enqueue(again.pk, 1)
    logger.info(
        "webhook delivery sent again", extra={"delivery_id": again.pk, "endpoint_id": endpoint.pk}
    )
    return again


def retry_delay_seconds(attempt: int, retry_after: int | None = None) -> int:
    """Seconds to wait after failed attempt number `attempt` before the next one.

    `WEBHOOKS_RETRY_BASE_SECONDS` times 4 for each attempt made, at most
    `WEBHOOKS_RETRY_MAX_SECONDS`, at least a receiver's `Retry-After` (up to the same
    maximum), with a tenth either way of jitter so that retries after an outage spread out.
    """
    ceiling = settings.WEBHOOKS_RETRY_MAX_SECONDS
    delay = min(settings.WEBHOOKS_RETRY_BASE_SECONDS * 4 ** (attempt - 1), ceiling)
    if retry_after:
        delay = min(max(delay, retry_after), ceiling)
    return max(1, round(delay * random.uniform(0.9, 1.1)))


def delivery_attempt(*, delivery_id: int, attempt: int) -> Delivery | None:
    """Make attempt number `attempt` of a delivery and record how it went.

    Safe to run twice: the attempt is claimed by one conditional UPDATE, so a message
    delivered again (a worker lost, a Redis visibility timeout, the sweeper) finds the
    attempt taken and does nothing. Returns the delivery, or None when there was nothing
    to do.
    """
    delivery = Delivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Delivery.Status.PENDING:
        return None  # gone with its endpoint, or already settled
    endpoint = delivery.endpoint
    if not endpoint.is_enabled:
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.FAILED,
            next_attempt_at=None,
            last_error="Not sent: the endpoint was disabled.",
        )
        return None
    now = timezone.now()
    claimed = Delivery.objects.filter(
        pk=delivery_id, status=Delivery.Status.PENDING, attempts=attempt - 1
    ).update(attempts=attempt, last_attempt_at=now, next_attempt_at=now)
    if not claimed:
        return None  # another copy of this message made (or is making) the attempt
    delivery.attempts, delivery.last_attempt_at = attempt, now
    timestamp = int(now.timestamp())
    headers = {
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            endpoint.signing_secrets(),
            msg_id=delivery.webhook_id,
            timestamp=timestamp,
            body=delivery.body,
        ),
    }
    outcome = webhook_post(endpoint.url, body=delivery.body, headers=headers)
    if outcome.is_success:
        _attempt_succeeded(delivery, outcome)
    else:
        _attempt_failed(delivery, outcome)
    log = logger.info if outcome.is_success else logger.warning
    log(
        "webhook attempt made",
        extra={
            "delivery_id": delivery.pk,
            "endpoint_id": endpoint.pk,
            "attempt": attempt,
            "status_code": outcome.status_code,
            "outcome": delivery.status,
        },
    )
    return delivery


def _attempt_succeeded(delivery: Delivery, outcome: Outcome) -> None:
    now = timezone.now()
    delivery.status, delivery.delivered_at = Delivery.Status.DELIVERED, now
    delivery.last_status_code, delivery.last_error = outcome.status_code, ""
    delivery.next_attempt_at = None
    delivery.save(
        update_fields=[
            "status",
            "delivered_at",
            "last_status_code",
            "last_error",
            "next_attempt_at",
        ]
    )
    # One success ends a run of failures (no write when there was none).
    Endpoint.objects.filter(pk=delivery.endpoint_id, failure_count__gt=0).update(
        failure_count=0, failing_since=None
    )


@transaction.atomic
def _attempt_failed(delivery: Delivery, outcome: Outcome) -> None:
    now = timezone.now()
    endpoint = Endpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    endpoint.failure_count += 1
    endpoint.failing_since = endpoint.failing_since or now
    endpoint.save(update_fields=["failure_count", "failing_since", "updated_at"])
    delivery.last_status_code, delivery.last_error = outcome.status_code, outcome.error[:200]
    reason = _disable_reason(endpoint, outcome)
    if reason is not None and endpoint.is_enabled:
        delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
        delivery.save(update_fields=["status", "next_attempt_at", "last_status_code", "last_error"])
        _disable_automatically(endpoint, reason=reason)
        return
    if delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
    else:
        delay = retry_delay_seconds(delivery.attempts, outcome.retry_after_seconds)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        _enqueue(delivery.pk, delivery.attempts + 1, countdown=delay)
    delivery.save(update_fields=["status", "next_attempt_at", "last_status_code", "last_error"])


def _disable_reason(endpoint: Endpoint, outcome: Outcome) -> Endpoint.DisabledReason | None:
    """Why the endpoint should stop receiving, after this failure (None: keep trying).

    410 Gone says the receiver wants no more (Standard Webhooks). Otherwise an endpoint is
    disabled after `WEBHOOKS_DISABLE_AFTER_FAILURES` failed attempts in a row spanning at
    least `WEBHOOKS_DISABLE_AFTER_HOURS`: a burst of failures during a short outage is not
    enough, and neither is a long quiet spell with one failure in it.
    """
    if outcome.status_code == 410:
        return Endpoint.DisabledReason.GONE
    assert endpoint.failing_since is not None
    failing_for = timezone.now() - endpoint.failing_since
    if endpoint.failure_count >= settings.WEBHOOKS_DISABLE_AFTER_FAILURES and failing_for >= (
        timedelta(hours=settings.WEBHOOKS_DISABLE_AFTER_HOURS)
    ):
        return Endpoint.DisabledReason.FAILING
    return None


def _disable_automatically(endpoint: Endpoint, *, reason: Endpoint.DisabledReason) -> None:
    """Disable a locked, failing endpoint and tell the workspace's owners by e-mail."""
    workspace = require_tenant()
    with audited(
        "webhook.endpoint_disable",
        actor=SYSTEM_ACTOR,
        tenant=workspace,
        endpoint_id=endpoint.pk,
        reason=reason.value,
        failures=endpoint.failure_count,
    ):
        _disable(endpoint, reason=reason)
    owners = list(
        User.objects.filter(role=User.Role.OWNER, is_active=True)
        .order_by("pk")
        .values_list("email", flat=True)
    )
    parts = urlsplit(endpoint.url)
    mail_send(
        to=owners,
        template="webhooks/mail/endpoint_disabled",
        context={
            "workspace": workspace.name,
            # Scheme, host and path: a query string may hold the receiver's token.
            "endpoint": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "reason": DISABLED_BECAUSE[reason],
            "failures": endpoint.failure_count,
            "failing_since": endpoint.failing_since,
            "url": workspace_url(workspace.subdomain, f"settings/webhooks/{endpoint.pk}/"),
        },
    )
    logger.warning(
        "webhook endpoint disabled automatically",
        extra={"endpoint_id": endpoint.pk, "reason": reason.value},
    )


def deliveries_maintain() -> dict[str, int]:
    """Queue again the deliveries whose message was lost, and forget old deliveries.

    A pending delivery overdue by `WEBHOOKS_STALE_SECONDS` lost its message (the broker was
    down at commit, or a worker died mid-attempt); it gets its next attempt now. Deliveries
    older than `WEBHOOKS_DELIVERY_RETENTION_DAYS` leave the log.
    """
    now = timezone.now()
    overdue: QuerySet[Delivery] = Delivery.objects.filter(
        status=Delivery.Status.PENDING,
        next_attempt_at__lt=now - timedelta(seconds=settings.WEBHOOKS_STALE_SECONDS),
        endpoint__disabled_at__isnull=True,
    ).order_by("next_attempt_at")
    requeued = 0
    for delivery_id, attempts in overdue.values_list("pk", "attempts")[:500]:
        _enqueue(delivery_id, attempts + 1)
        requeued += 1
    cutoff = now - timedelta(days=settings.WEBHOOKS_DELIVERY_RETENTION_DAYS)
    forgotten, _ = Delivery.objects.filter(created_at__lt=cutoff).delete()
    if requeued or forgotten:
        logger.info(
            "webhook deliveries maintained", extra={"requeued": requeued, "forgotten": forgotten}
        )
    return {"requeued": requeued, "forgotten": forgotten}
