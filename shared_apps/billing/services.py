"""Billing: plan limits, Stripe checkout and portal, webhook events and dunning.

State is copied from the customer's subscriptions as Stripe has them when an event is
processed, never from the event's own (possibly stale) copy, so events that arrive late,
twice or out of order converge on the same state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.billing import policy
from shared_apps.billing import stripe_gateway as gateway
from shared_apps.billing.errors import (
    BillingNotConfiguredError,
    BillingRequestFailedError,
    BillingUnavailableError,
    NoBillingAccountError,
    PlanLimitReachedError,
    StripeRequestError,
    StripeUnavailableError,
    SubscriptionExistsError,
)
from shared_apps.billing.models import BillingAccount, Plan, StripeEvent
from shared_apps.billing.selectors import checkout_plan_get, plan_default, plan_for_tenant
from shared_apps.tenants.addresses import workspace_host as tenant_host
from shared_apps.tenants.errors import TenantStateError
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.services import tenant_resume, tenant_suspend
from tenancy import TenantSchemaMissingError, public_context, require_tenant, tenant_context

logger = logging.getLogger(__name__)

ACTOR = "billing"
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


# LIMITS --------------------------------------------------------------------------------

RESOURCES = {
    "seats": "members (pending invitations included)",
    "projects": "projects",
    "storage_bytes": "of file storage",
}


def _amount(resource: str, value: int) -> str:
    if resource == "storage_bytes":
        return f"{value / (1024 * 1024):.0f} MB"
    return str(value)


def _limit_lock_key(tenant_id: uuid.UUID, resource: str) -> int:
    digest = hashlib.blake2b(f"plan-limit:{tenant_id}:{resource}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)  # PostgreSQL's bigint


def plan_limit_require(*, resource: str, used: Callable[[], int], adding: int = 1) -> None:
    """Refuse an action that would take the active workspace past its plan's limit.

    Call it inside the service's transaction, before the insert it guards. It takes a
    per-workspace, per-resource lock held until that transaction ends and only then calls
    `used()` to count: two requests at the limit cannot both count the same total and both
    insert; the second one counts after the first has committed.

    Raises:
        PlanLimitReachedError: `used() + adding` exceeds the plan's limit for `resource`.
    """
    if resource not in RESOURCES:
        raise ValueError(f"unknown plan resource: {resource}")
    if not connection.in_atomic_block:
        raise RuntimeError("plan limits are checked inside the service's transaction")
    tenant_id = require_tenant().id
    plan = plan_for_tenant(tenant_id=tenant_id)
    limit = plan.limit_for(resource)
    if limit is None:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_limit_lock_key(tenant_id, resource)])
    # READ COMMITTED: this statement's snapshot is taken after the lock, so it sees the row
    # the previous holder committed.
    count = used()
    if count + adding <= limit:
        return
    raise PlanLimitReachedError(
        f"The {plan.name} plan allows {_amount(resource, limit)} {RESOURCES[resource]}; "
        f"this workspace uses {_amount(resource, count)}. "
        "An owner can upgrade on the Billing page.",
        resource=resource,
        limit=limit,
    )


# CHECKOUT AND PORTAL -------------------------------------------------------------------


def _account_lock(tenant: Tenant) -> BillingAccount:
    BillingAccount.objects.get_or_create(tenant=tenant, defaults={"plan": plan_default()})
    return BillingAccount.objects.select_for_update().select_related("tenant").get(pk=tenant.pk)


def _subscription_absent_require(account: BillingAccount) -> None:
    if account.subscription_status in BillingAccount.LIVE:
        raise SubscriptionExistsError(
            "This workspace already has a subscription; change it with Manage billing."
        )


def _customer_ensure(*, tenant_id: uuid.UUID, email: str, name: str) -> str:
    """Return the workspace's Stripe customer id, creating the customer the first time.

    Its own transaction, committed before the Checkout Session is asked for: a session that
    then fails must not make us forget a customer that exists in Stripe.
    """
    with transaction.atomic():
        # The lock makes a concurrent checkout wait and then find the stored customer.
        account = _account_lock(Tenant.objects.get(pk=tenant_id))
        _subscription_absent_require(account)
        if not account.stripe_customer_id:
            customer = gateway.customer_create(tenant_id=str(tenant_id), email=email, name=name)
            account.stripe_customer_id = customer["id"]
            account.save(update_fields=["stripe_customer_id", "updated_at"])
            logger.info("stripe customer created", extra={"customer_id": customer["id"]})
        return str(account.stripe_customer_id)


def billing_checkout_start(*, actor: User, plan_code: str, site_url: str) -> str:
    """Return the Stripe Checkout address where the owner subscribes the workspace to a plan.

    Raises:
        PermissionDenied, BillingNotConfiguredError, PlanNotFoundError, SubscriptionExistsError,
        BillingUnavailableError (Stripe unreachable; nothing charged, the owner may retry),
        BillingRequestFailedError (Stripe refused the request).
    """
    plan = checkout_plan_get(actor=actor, plan_code=plan_code)
    ref = require_tenant()
    with _stripe_reachable(), public_context():
        customer_id = _customer_ensure(tenant_id=ref.id, email=actor.email, name=ref.name)
        with transaction.atomic():
            account = _account_lock(Tenant.objects.get(pk=ref.id))
            _subscription_absent_require(account)
            session = gateway.checkout_session_create(
                tenant_id=str(ref.id), customer_id=customer_id,
                price_id=plan.stripe_price_id, trial_days=plan.trial_days,
                success_url=f"{site_url}billing/?checkout=success",
                cancel_url=f"{site_url}billing/?checkout=cancelled",
            )  # fmt: skip
    logger.info("checkout started", extra={"plan": plan.code, "session_id": session.get("id")})
    return str(session["url"])


def billing_portal_open(*, actor: User, site_url: str) -> str:
    """Return a Stripe customer portal address (change plan, update the card, cancel).

    Raises:
        PermissionDenied, BillingNotConfiguredError, NoBillingAccountError,
        BillingUnavailableError (Stripe unreachable; the owner may retry),
        BillingRequestFailedError (Stripe refused the request).
    """
    policy.require(actor, "billing.manage")
    if not gateway.billing_enabled():
        raise BillingNotConfiguredError("Billing is not configured; every workspace is free.")
    account = BillingAccount.objects.filter(tenant_id=require_tenant().id).first()
    if account is None or not account.stripe_customer_id:
        raise NoBillingAccountError("Choose a paid plan first; there is nothing to manage yet.")
    with _stripe_reachable():
        session = gateway.portal_session_create(
            customer_id=account.stripe_customer_id, return_url=f"{site_url}billing/"
        )
    return str(session["url"])


@contextmanager
def _stripe_reachable() -> Iterator[None]:
    """Turn Stripe trouble into a message for the owner (the tasks retry on their own instead).

    Down: retry in a minute. Refused: a bug or a misconfiguration on our side, logged with
    Stripe's request id so support can find it in Stripe's logs.
    """
    try:
        yield
    except StripeUnavailableError as error:
        logger.warning("stripe unreachable", extra={"error": str(error)[:200]})
        raise BillingUnavailableError(
            "Stripe, our payment provider, could not be reached; nothing was charged. "
            "Please try again in a minute."
        ) from error
    except StripeRequestError as error:
        logger.error(
            "stripe refused a request",
            extra={"stripe_request_id": error.request_id, "error": str(error)[:500]},
        )
        reference = f" (reference {error.request_id})" if error.request_id else ""
        raise BillingRequestFailedError(
            "Stripe, our payment provider, refused this request; nothing was charged. "
            f"Please contact support{reference}.",
            stripe_request_id=error.request_id,
        ) from error


# WEBHOOK EVENTS ------------------------------------------------------------------------


def stripe_event_receive(*, payload: bytes, signature: str | None) -> StripeEvent:
    """Verify and store a webhook delivery; queue its processing unless already processed.

    Raises:
        BillingNotConfiguredError, WebhookSignatureInvalidError (nothing is stored).
    """
    if not gateway.billing_enabled():
        raise BillingNotConfiguredError("Billing is not configured.")
    event = gateway.event_verify(payload=payload, signature=signature)
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
    from shared_apps.billing.tasks import stripe_event_process_task

    stripe_event_process_task.apply_async(kwargs={"event_id": event_id})


def stripe_event_process(*, event_id: str) -> bool:
    """Apply one stored event and mark it processed in the same transaction.

    Returns whether this call applied it (False: already processed, or unknown). A failure
    is recorded on the row and raised, so the task retries and a redelivery tries again.
    """
    try:
        with transaction.atomic():
            event = StripeEvent.objects.select_for_update().filter(event_id=event_id).first()
            if event is None:
                logger.warning("stripe event not stored", extra={"event_id": event_id})
                return False
            if event.processed_at is not None:
                return False  # a replay, or a second message for the same delivery
            _event_apply(event.payload)
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


# After this many failed attempts the half-hourly retry stops queueing an event: one that
# can never succeed must not take the place of newer ones. A new delivery from Stripe (or
# "Resend" in its dashboard) still processes it, and the next event of the same customer
# copies the whole state from Stripe anyway.
EVENT_MAX_ATTEMPTS = 50
EVENT_RETRY_BATCH = 500


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


def _id_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


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
    return str(tenant_id), _id_of(customer_id)


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
    account = _account_lock(tenant)
    if account.stripe_customer_id and customer_id and account.stripe_customer_id != customer_id:
        logger.warning(
            "stripe event names another customer",
            extra={"tenant_id": str(tenant.id), "customer_id": customer_id},
        )
        return None
    if customer_id and not account.stripe_customer_id:
        account.stripe_customer_id = customer_id
    return account


def _event_apply(payload: dict[str, Any]) -> None:
    kind = str(payload.get("type"))
    if kind not in HANDLED_EVENTS:
        return  # stored for the record; nothing to do
    obj = (payload.get("data") or {}).get("object") or {}
    tenant_id, customer_id = _event_owner(obj)
    account = _account_for_event(tenant_id, customer_id)
    if account is None:
        logger.warning("stripe event for no workspace", extra={"event_id": payload.get("id")})
        return
    _account_refresh(account)


# STATE FROM STRIPE AND DUNNING ---------------------------------------------------------


def _subscription_pick(subscriptions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest live subscription, else the newest of any status."""
    for subscription in subscriptions:
        if subscription.get("status") in BillingAccount.LIVE:
            return subscription
    return subscriptions[0] if subscriptions else None


def _first_item(subscription: dict[str, Any]) -> dict[str, Any]:
    items = (subscription.get("items") or {}).get("data") or []
    return dict(items[0]) if items else {}


def _period_end(subscription: dict[str, Any]) -> datetime | None:
    # Newer API versions moved the period from the subscription to its items.
    value = subscription.get("current_period_end") or _first_item(subscription).get(
        "current_period_end"
    )
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _plan_for(subscription: dict[str, Any] | None, current: Plan) -> Plan:
    if subscription is None or subscription.get("status") not in BillingAccount.LIVE:
        return plan_default()
    price_id = _id_of(_first_item(subscription).get("price"))
    plan = Plan.objects.filter(stripe_price_id=price_id).first() if price_id else None
    if plan is None:
        logger.error("subscription to an unknown price", extra={"price_id": price_id})
        return current
    return plan


def _account_refresh(account: BillingAccount) -> list[str]:
    """Copy the customer's latest subscription onto the (locked) account; return the steps."""
    subscriptions = (
        gateway.subscriptions_for_customer(customer_id=account.stripe_customer_id)
        if account.stripe_customer_id
        else []
    )
    subscription = _subscription_pick(subscriptions)
    status = str(subscription.get("status") or "") if subscription else ""
    previous_status = account.subscription_status
    now = timezone.now()
    account.plan = _plan_for(subscription, account.plan)
    account.stripe_subscription_id = str(subscription["id"]) if subscription else ""
    known = status in BillingAccount.Status.values
    account.subscription_status = status if known else BillingAccount.Status.NONE
    account.current_period_end = _period_end(subscription) if subscription else None
    account.cancel_at_period_end = bool(subscription and subscription.get("cancel_at_period_end"))
    account.synced_at = now
    steps: list[str] = []
    if status in BillingAccount.DELINQUENT:
        if account.past_due_since is None:
            account.past_due_since = now
            account.grace_ends_at = now + timedelta(days=settings.BILLING_GRACE_DAYS)
            steps.append("past_due")
    elif status in BillingAccount.HEALTHY:
        if account.past_due_since is not None:
            account.past_due_since = account.grace_ends_at = None
            steps.append("recovered")
        if account.is_suspended_by_billing:
            _tenant_resume(account.tenant)
            account.is_suspended_by_billing = False
            steps.append("resumed")
    elif status not in BillingAccount.LIVE and (
        previous_status in BillingAccount.LIVE
        or account.past_due_since is not None
        or account.is_suspended_by_billing
    ):
        # Ended (canceled, expired, or gone): nothing was paid, so this is no recovery. The
        # workspace is on the free plan now (see _plan_for); one that billing suspended opens
        # again with the free plan's limits, since there is no longer anything to pay.
        account.past_due_since = account.grace_ends_at = None
        if account.is_suspended_by_billing:
            _tenant_resume(account.tenant)
            account.is_suspended_by_billing = False
            steps.append("ended_resumed")
        else:
            steps.append("ended")
    account.save()
    for step in steps:
        _owners_notify(account, step)
    if steps:
        logger.info(
            "billing state changed",
            extra={"tenant_id": str(account.tenant_id), "steps": steps, "status": status},
        )
    return steps


def _tenant_resume(tenant: Tenant) -> None:
    tenant = Tenant.objects.get(pk=tenant.pk)
    if tenant.status != Tenant.Status.SUSPENDED:
        return
    try:
        tenant_resume(tenant=tenant, actor=ACTOR)
    except TenantStateError:  # archived meanwhile: nothing to serve again
        logger.info("billing did not resume tenant", extra={"tenant_id": str(tenant.id)})


def billing_grace_expire(*, now: datetime | None = None) -> int:
    """Suspend the workspaces whose grace period after a failed payment has run out.

    Returns how many were suspended. Without Stripe keys nothing is suspended.
    """
    if not gateway.billing_enabled():
        return 0
    now = now or timezone.now()
    due = list(
        BillingAccount.objects.filter(
            grace_ends_at__lte=now,
            is_suspended_by_billing=False,
            tenant__status=Tenant.Status.ACTIVE,  # billing suspends only active tenants
        )
        .order_by("grace_ends_at", "tenant_id")
        .values_list("tenant_id", flat=True)
    )
    suspended = failed = 0
    for tenant_id in due:
        # One account's trouble (a customer deleted in Stripe, a bug) must not let every
        # later workspace escape suspension: log it and go on; the next run tries again.
        try:
            suspended += _grace_expire_one(tenant_id, now)
        except StripeUnavailableError:
            failed += 1
            logger.warning("grace check postponed", extra={"tenant_id": str(tenant_id)})
        except Exception:
            failed += 1
            logger.exception("grace check failed", extra={"tenant_id": str(tenant_id)})
    if failed:
        logger.error(
            "grace check incomplete",
            extra={"due": len(due), "failed": failed, "suspended": suspended},
        )
    return suspended


@transaction.atomic
def _grace_expire_one(tenant_id: uuid.UUID, now: datetime) -> bool:
    account = BillingAccount.objects.select_for_update().select_related("tenant").get(pk=tenant_id)
    # A payment whose event is still on its way must not cost the workspace its site.
    _account_refresh(account)
    if account.is_suspended_by_billing or account.grace_ends_at is None:
        return False
    if account.grace_ends_at > now:
        return False
    tenant = Tenant.objects.get(pk=tenant_id)
    if tenant.status != Tenant.Status.ACTIVE:
        return False  # suspended by an operator, or archived: not billing's to manage
    tenant_suspend(tenant=tenant, reason="payment overdue", actor=ACTOR)
    account.is_suspended_by_billing = True
    account.save(update_fields=["is_suspended_by_billing", "updated_at"])
    _owners_notify(account, "suspended")
    return True


# E-MAIL --------------------------------------------------------------------------------


def _message(account: BillingAccount, step: str) -> tuple[str, str]:
    tenant = account.tenant
    page = f"{tenant_host(tenant.subdomain)}/billing/"
    if step == "past_due":
        deadline = account.grace_ends_at.strftime("%Y-%m-%d") if account.grace_ends_at else ""
        return (
            f"Payment failed for {tenant.name}",
            f"We could not collect the payment for {tenant.name}.\n\n"
            f"Please update the card on the Billing page ({page}) by {deadline}; "
            "after that the workspace will be suspended until the payment succeeds.\n",
        )
    if step == "suspended":
        return (
            f"{tenant.name} is suspended",
            f"{tenant.name} is suspended because its payment is overdue. Nothing is deleted.\n\n"
            "Pay the open invoice from the link in Stripe's e-mail and the workspace opens "
            "again.\n",
        )
    if step == "resumed":
        return (
            f"{tenant.name} is active again",
            f"Thank you: the payment arrived and {tenant.name} is open again.\n",
        )
    if step in ("ended", "ended_resumed"):
        plan = account.plan.name
        reopened = (
            f"{tenant.name} was suspended because a payment was overdue; with no subscription "
            f"there is nothing left to pay, so it is open again on the {plan} plan.\n\n"
            if step == "ended_resumed"
            else ""
        )
        return (
            f"The subscription for {tenant.name} has ended",
            f"The subscription for {tenant.name} has ended; the workspace is on the {plan} "
            f"plan now, with that plan's limits. Nothing is deleted.\n\n{reopened}"
            f"To subscribe again, choose a plan on the Billing page ({page}).\n",
        )
    return (
        f"Payment received for {tenant.name}",
        f"Thank you: the payment for {tenant.name} arrived; nothing else is needed.\n",
    )


def _owners_notify(account: BillingAccount, step: str) -> None:
    """E-mail the workspace's owners once the step has committed."""
    tenant_id = str(account.tenant_id)
    try:
        with tenant_context(account.tenant):
            owners = list(
                User.objects.filter(role=User.Role.OWNER, is_active=True).values_list(
                    "email", flat=True
                )
            )
    except TenantSchemaMissingError:
        # An archived workspace has no schema, hence no owners to write to; the billing
        # step itself still applies.
        logger.warning(
            "billing e-mail skipped: no workspace schema",
            extra={"tenant_id": tenant_id, "step": step},
        )
        return
    if not owners:
        return
    subject, body = _message(account, step)

    def send() -> None:
        try:
            send_mail(subject=subject, message=body, from_email=None, recipient_list=owners)
        except Exception:  # a mail failure must not undo or repeat a billing step
            logger.exception("billing e-mail failed", extra={"tenant_id": tenant_id, "step": step})

    transaction.on_commit(send)
