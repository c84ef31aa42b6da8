"""Subscription state from Stripe, and dunning: grace period, suspension, resumption.

`billing_account_sync` copies the customer's subscriptions, as Stripe had them when read
(before any lock: Stripe is never called while a row is locked), onto the workspace's
billing account, then takes the steps TRANSITIONS names for where the workspace
stood and what its subscription became. The beat task `billing_grace_expire` suspends
workspaces whose grace period ran out. Each step happens once per transition, so a replayed
event sends no second e-mail.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from shared_apps.billing import stripe_gateway as gateway
from shared_apps.billing.errors import StripeUnavailableError
from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.billing.notifications import billing_owners_notify
from shared_apps.billing.selectors import plan_default
from shared_apps.tenants.errors import TenantStateInvalidError
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.services import tenant_resume, tenant_suspend

logger = logging.getLogger(__name__)

ACTOR = "billing"


class Standing(StrEnum):
    """Where a workspace stands with billing, read from its account before a change.

    Code keeps grace_ends_at set exactly while past_due_since is, and suspends only during a
    grace period, so these four cover every account (the admin cannot edit the fields).
    """

    FREE = "free"  # no live subscription and no dunning under way
    SUBSCRIBED = "subscribed"  # a live subscription, payments in order
    PAST_DUE = "past_due"  # a payment failed; the grace period runs
    SUSPENDED = "suspended"  # the grace period ran out and billing suspended the tenant


class Change(StrEnum):
    """What happened: the subscription's status as Stripe has it now, or the grace clock."""

    DELINQUENT = "delinquent"  # past_due, unpaid
    HEALTHY = "healthy"  # trialing, active: paid (or in trial)
    PAUSED = "paused"  # live but neither: dunning stays as it is
    ENDED = "ended"  # canceled, incomplete, incomplete_expired, or no subscription left
    GRACE_OVER = "grace_over"  # billing_grace_expire found the grace period over


class Step(StrEnum):
    """A change to the account and the tenant; the value names the owners' e-mail."""

    GRACE_START = "past_due"  # grace period starts; the site keeps working
    RECOVER = "recovered"  # paid again: the grace period is over
    RESUME = "resumed"  # billing suspended the tenant; it opens again
    END = "ended"  # back on the free plan; grace period cleared
    END_AND_RESUME = "ended_resumed"  # as END, and the tenant billing suspended opens again
    SUSPEND = "suspended"  # the grace period ran out: billing suspends the tenant


# (where the workspace stood, what happened) -> the steps to take, in this order.
TRANSITIONS: dict[tuple[Standing, Change], tuple[Step, ...]] = {
    (Standing.FREE, Change.DELINQUENT): (Step.GRACE_START,),
    (Standing.SUBSCRIBED, Change.DELINQUENT): (Step.GRACE_START,),
    (Standing.PAST_DUE, Change.DELINQUENT): (),  # a second failure does not extend the grace
    (Standing.SUSPENDED, Change.DELINQUENT): (),
    (Standing.FREE, Change.HEALTHY): (),
    (Standing.SUBSCRIBED, Change.HEALTHY): (),
    (Standing.PAST_DUE, Change.HEALTHY): (Step.RECOVER,),
    (Standing.SUSPENDED, Change.HEALTHY): (Step.RECOVER, Step.RESUME),
    (Standing.FREE, Change.PAUSED): (),
    (Standing.SUBSCRIBED, Change.PAUSED): (),
    (Standing.PAST_DUE, Change.PAUSED): (),
    (Standing.SUSPENDED, Change.PAUSED): (),
    (Standing.FREE, Change.ENDED): (),  # never subscribed: nothing ended
    (Standing.SUBSCRIBED, Change.ENDED): (Step.END,),
    (Standing.PAST_DUE, Change.ENDED): (Step.END,),  # nothing was paid: no recovery
    # Nothing is left to pay, so the workspace opens again, with the free plan's limits.
    (Standing.SUSPENDED, Change.ENDED): (Step.END_AND_RESUME,),
    (Standing.FREE, Change.GRACE_OVER): (),
    (Standing.SUBSCRIBED, Change.GRACE_OVER): (),
    (Standing.PAST_DUE, Change.GRACE_OVER): (Step.SUSPEND,),
    (Standing.SUSPENDED, Change.GRACE_OVER): (),  # already suspended
}


def _standing(account: BillingAccount) -> Standing:
    if account.is_suspended_by_billing:
        return Standing.SUSPENDED
    if account.past_due_since is not None:
        return Standing.PAST_DUE
    if account.subscription_status in BillingAccount.LIVE:
        return Standing.SUBSCRIBED
    return Standing.FREE


def _change_for(status: str) -> Change:
    if status in BillingAccount.DELINQUENT:
        return Change.DELINQUENT
    if status in BillingAccount.HEALTHY:
        return Change.HEALTHY
    if status in BillingAccount.LIVE:
        return Change.PAUSED
    return Change.ENDED


def _step_take(account: BillingAccount, step: Step, now: datetime) -> bool:
    """Apply one step to the (locked, unsaved) account; return whether it was taken."""
    if step is Step.GRACE_START:
        account.past_due_since = now
        account.grace_ends_at = now + timedelta(days=settings.BILLING_GRACE_DAYS)
    elif step in (Step.RECOVER, Step.END):
        account.past_due_since = account.grace_ends_at = None
    elif step is Step.RESUME:
        _tenant_resume(account.tenant)
        account.is_suspended_by_billing = False
    elif step is Step.END_AND_RESUME:
        account.past_due_since = account.grace_ends_at = None
        _tenant_resume(account.tenant)
        account.is_suspended_by_billing = False
    elif step is Step.SUSPEND:
        tenant = Tenant.objects.get(pk=account.tenant_id)
        if tenant.status != Tenant.Status.ACTIVE:
            return False  # suspended by an operator, or archived: not billing's to manage
        tenant_suspend(tenant=tenant, reason="payment overdue", actor=ACTOR, for_non_payment=True)
        account.is_suspended_by_billing = True
    return True


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
    price_id = gateway.object_id(_first_item(subscription).get("price"))
    plan = Plan.objects.filter(stripe_price_id=price_id).first() if price_id else None
    if plan is None:
        logger.error("subscription to an unknown price", extra={"price_id": price_id})
        return current
    return plan


@dataclass(frozen=True)
class StripeState:
    """A customer's subscriptions as Stripe had them at `read_at`, read before any lock."""

    subscriptions: list[dict[str, Any]]
    read_at: datetime


def stripe_state_read(*, customer_id: str) -> StripeState:
    """Ask Stripe for the customer's subscriptions now (no database lock may be held).

    Raises:
        StripeUnavailableError, StripeRequestError.
    """
    read_at = timezone.now()
    subscriptions = (
        gateway.subscriptions_for_customer(customer_id=customer_id) if customer_id else []
    )
    return StripeState(subscriptions=subscriptions, read_at=read_at)


def billing_account_sync(*, account: BillingAccount, state: StripeState) -> list[Step]:
    """Copy the customer's latest subscription onto the (locked) account; take the steps due.

    `state` was read from Stripe before the lock was taken, so that no row stays locked
    while Stripe answers. A read older than the one the account already holds is dropped:
    two syncs racing cannot put an older state over a newer one (`synced_at` is the time of
    the Stripe read the account reflects). Returns the steps taken; the owners get an
    e-mail for each once the transaction commits.
    """
    if account.synced_at is not None and state.read_at <= account.synced_at:
        logger.info("older stripe read dropped", extra={"tenant_id": str(account.tenant_id)})
        return []
    subscription = _subscription_pick(state.subscriptions)
    status = str(subscription.get("status") or "") if subscription else ""
    standing = _standing(account)  # before the copy below overwrites the status
    now = timezone.now()
    account.plan = _plan_for(subscription, account.plan)
    account.stripe_subscription_id = str(subscription["id"]) if subscription else ""
    known = status in BillingAccount.Status.values
    account.subscription_status = status if known else BillingAccount.Status.NONE
    account.current_period_end = _period_end(subscription) if subscription else None
    account.cancel_at_period_end = bool(subscription and subscription.get("cancel_at_period_end"))
    account.synced_at = state.read_at
    due = TRANSITIONS[(standing, _change_for(status))]
    steps = [step for step in due if _step_take(account, step, now)]
    account.save()
    for step in steps:
        billing_owners_notify(account=account, step=step.value)
    if steps:
        logger.info(
            "billing state changed",
            extra={
                "tenant_id": str(account.tenant_id),
                "steps": [step.value for step in steps],
                "status": status,
            },
        )
    return steps


def _tenant_resume(tenant: Tenant) -> None:
    tenant = Tenant.objects.get(pk=tenant.pk)
    if tenant.status != Tenant.Status.SUSPENDED:
        return
    try:
        tenant_resume(tenant=tenant, actor=ACTOR)
    except TenantStateInvalidError:  # archived meanwhile: nothing to serve again
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


def _grace_expire_one(tenant_id: uuid.UUID, now: datetime) -> bool:
    # A payment whose event is still on its way must not cost the workspace its site: read
    # Stripe first (no lock held while it answers), then decide under the account's lock.
    stored = BillingAccount.objects.filter(pk=tenant_id).values_list(
        "stripe_customer_id", flat=True
    )
    customer_id = stored.first() or ""
    state = stripe_state_read(customer_id=customer_id)
    with transaction.atomic():
        return _grace_expire_locked(tenant_id, now, state)


def _grace_expire_locked(tenant_id: uuid.UUID, now: datetime, state: StripeState) -> bool:
    account = BillingAccount.objects.select_for_update().select_related("tenant").get(pk=tenant_id)
    billing_account_sync(account=account, state=state)
    if account.grace_ends_at is None or account.grace_ends_at > now:
        return False
    due = TRANSITIONS[(_standing(account), Change.GRACE_OVER)]
    steps = [step for step in due if _step_take(account, step, now)]
    if not steps:
        return False
    account.save(update_fields=["is_suspended_by_billing", "updated_at"])
    for step in steps:
        billing_owners_notify(account=account, step=step.value)
    return True
