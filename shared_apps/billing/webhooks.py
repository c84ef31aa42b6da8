"""Stripe's webhook events: received (verified, stored by id, queued) and processed.

Processing reduces an event to "which workspace" and then copies that workspace's state
from Stripe (dunning.billing_account_sync), never from the event's own, possibly stale,
copy: events that arrive late, twice or out of order converge on the same state.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.metrics import stripe_webhook_lag_observe
from shared_apps.billing import stripe_gateway as gateway
from shared_apps.billing.accounts import billing_account_lock
from shared_apps.billing.dunning import StripeState, billing_account_sync, stripe_state_read
from shared_apps.billing.errors import BillingNotConfiguredError
from shared_apps.billing.models import BillingAccount, StripeEvent
from shared_apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

HANDLED_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "invoice.paid",
        "invoice.payment_failed",
    }
)

# After this many failed attempts the half-hourly retry stops queueing an event: one that
# can never succeed must not take the place of newer ones. A new delivery from Stripe (or
# "Resend" in its dashboard) still processes it, and the next event of the same customer
# copies the whole state from Stripe anyway.
EVENT_MAX_ATTEMPTS = 50
EVENT_RETRY_BATCH = 500


def stripe_event_receive(*, payload: bytes, signature: str | None) -> StripeEvent:
    """Verify and store a webhook delivery; queue its processing unless already processed.

    Raises:
        BillingNotConfiguredError, SignatureInvalidError (nothing is stored).
    """
    if not gateway.billing_enabled():
        raise BillingNotConfiguredError("Billing is not configured.")
    event = gateway.event_verify(payload=payload, signature=signature)
    stripe_webhook_lag_observe(event.get("created"))
    with transaction.atomic(), connection.cursor() as cursor:
        # One statement: concurrent deliveries of the same event cannot both insert.
        cursor.execute(
            f"""
            INSERT INTO {StripeEvent._meta.db_table}
                (event_id, type, payload, received_at, deliveries, attempts, last_error)
            VALUES (%s, %s, %s::jsonb, now(), 1, 0, '')
            ON CONFLICT (event_id) DO UPDATE
                SET deliveries = {StripeEvent._meta.db_table}.deliveries + 1
            RETURNING id
            """,
            [str(event["id"])[:100], str(event["type"])[:100], json.dumps(event)],
        )
        row = cursor.fetchone()
        stored = StripeEvent.objects.get(pk=row[0])
        if stored.processed_at is None:
            transaction.on_commit(lambda: _process_later(stored.event_id))
    logger.info(
        "stripe event received",
        extra={"event_id": stored.event_id, "type": stored.type, "deliveries": stored.deliveries},
    )
    return stored


def _process_later(event_id: str) -> None:
    from shared_apps.billing.tasks import stripe_event_process_task  # the task imports us

    stripe_event_process_task.apply_async(kwargs={"event_id": event_id})


def stripe_event_process(*, event_id: str) -> bool:
    """Apply one stored event and mark it processed in the same transaction.

    Returns whether this call applied it (False: already processed, or unknown). A failure
    is recorded on the row and raised, so the task retries and a redelivery tries again.
    """
    try:
        stored = StripeEvent.objects.filter(event_id=event_id).first()
        if stored is None:
            logger.warning("stripe event not stored", extra={"event_id": event_id})
            return False
        if stored.processed_at is not None:
            return False  # a replay, or a second message for the same delivery
        # Stripe is asked before any lock is taken; the lock only orders the local writes.
        state = _stripe_state_for(stored.payload)
        with transaction.atomic():
            event = StripeEvent.objects.select_for_update().filter(event_id=event_id).first()
            if event is None or event.processed_at is not None:
                return False  # processed by a concurrent delivery meanwhile
            _event_apply(event.payload, state)
            event.processed_at = timezone.now()
            event.attempts += 1
            event.last_error = ""
            event.save(update_fields=["processed_at", "attempts", "last_error"])
    except Exception as error:
        StripeEvent.objects.filter(event_id=event_id, processed_at__isnull=True).update(
            attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:2000]
        )
        logger.warning("stripe event failed", extra={"event_id": event_id}, exc_info=True)
        attempts = (
            StripeEvent.objects.filter(event_id=event_id).values_list("attempts", flat=True).first()
        )
        if attempts == EVENT_MAX_ATTEMPTS:
            logger.error(
                "stripe event abandoned",
                extra={"event_id": event_id, "attempts": attempts, "error": str(error)[:500]},
            )
        raise
    logger.info("stripe event processed", extra={"event_id": event_id})
    return True


def stripe_events_retry(
    *, older_than: timedelta = timedelta(minutes=30), limit: int = EVENT_RETRY_BATCH
) -> int:
    """Queue again the events whose processing never succeeded (after the task gave up).

    Fewest attempts first, then oldest: events that keep failing go to the back of the queue
    and stop being queued after EVENT_MAX_ATTEMPTS.
    """
    stale = (
        StripeEvent.objects.filter(
            processed_at__isnull=True,
            received_at__lte=timezone.now() - older_than,
            attempts__lt=EVENT_MAX_ATTEMPTS,
        )
        .order_by("attempts", "received_at", "id")
        .values_list("event_id", flat=True)[:limit]
    )
    ids = list(stale)
    for event_id in ids:
        _process_later(event_id)
    return len(ids)


def _event_owner(obj: dict[str, Any]) -> tuple[str, str]:
    """Return (tenant id, customer id) named by an event's object, either may be ''."""
    metadata = obj.get("metadata") or {}
    details = obj.get("subscription_details") or (
        (obj.get("parent") or {}).get("subscription_details") or {}
    )
    tenant_id = (
        metadata.get("tenant_id")
        or obj.get("client_reference_id")
        or (details.get("metadata") or {}).get("tenant_id")
        or ""
    )
    customer_id = obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
    return str(tenant_id), gateway.object_id(customer_id)


def _account_for_event(tenant_id: str, customer_id: str) -> BillingAccount | None:
    if customer_id:
        account = (
            BillingAccount.objects.select_for_update()
            .select_related("tenant")
            .filter(stripe_customer_id=customer_id)
            .first()
        )
        if account is not None:
            return account
    try:
        tenant = Tenant.objects.filter(pk=uuid.UUID(tenant_id)).first()
    except ValueError:
        tenant = None
    if tenant is None:
        return None
    account = billing_account_lock(tenant=tenant)
    if account.stripe_customer_id and customer_id and account.stripe_customer_id != customer_id:
        logger.warning(
            "stripe event names another customer",
            extra={"tenant_id": str(tenant.id), "customer_id": customer_id},
        )
        return None
    if customer_id and not account.stripe_customer_id:
        account.stripe_customer_id = customer_id
    return account


def _stripe_state_for(payload: dict[str, Any]) -> StripeState | None:
    """Read from Stripe what applying this event needs (nothing for unhandled events)."""
    if str(payload.get("type")) not in HANDLED_EVENTS:
        return None
    obj = (payload.get("data") or {}).get("object") or {}
    tenant_id, customer_id = _event_owner(obj)
    if not customer_id:
        customer_id = _stored_customer(tenant_id)
    return stripe_state_read(customer_id=customer_id)


def _stored_customer(tenant_id: str) -> str:
    try:
        tenant_uuid = uuid.UUID(tenant_id)
    except ValueError:
        return ""
    found = BillingAccount.objects.filter(tenant_id=tenant_uuid).values_list(
        "stripe_customer_id", flat=True
    )
    return found.first() or ""


def _event_apply(payload: dict[str, Any], state: StripeState | None) -> None:
    kind = str(payload.get("type"))
    if kind not in HANDLED_EVENTS or state is None:
        return  # stored for the record; nothing to do
    obj = (payload.get("data") or {}).get("object") or {}
    tenant_id, customer_id = _event_owner(obj)
    account = _account_for_event(tenant_id, customer_id)
    if account is None:
        logger.warning("stripe event for no workspace", extra={"event_id": payload.get("id")})
        return
    billing_account_sync(account=account, state=state)
