"""Reads of plans and billing state (public schema; reachable from any tenant's search path)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.urls import reverse

from shared_apps.accounts.models import User
from shared_apps.billing import policy
from shared_apps.billing.errors import (
    BillingNotConfiguredError,
    PlanNotFoundError,
    SubscriptionExistsError,
)
from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.billing.stripe_gateway import billing_enabled
from tenancy import public_context, require_tenant


def plan_default() -> Plan:
    """Return the plan of every workspace that pays for nothing (seeded as `free`)."""
    return Plan.objects.get(is_default=True)


def billing_account_get(*, tenant_id: UUID) -> BillingAccount | None:
    return BillingAccount.objects.select_related("plan").filter(tenant_id=tenant_id).first()


def billing_live_subscription(tenant_id: UUID) -> str | None:
    """Return the id of the workspace's subscription that still bills (or will), else None.

    Live means trialing, active, past due, unpaid or paused, as last copied from Stripe;
    deleting a workspace must wait until that subscription is canceled in Stripe.
    """
    with public_context():  # callable from operator commands, inside a tenant or not
        account = BillingAccount.objects.filter(tenant_id=tenant_id).first()
    if account is None or not account.has_live_subscription:
        return None
    return account.stripe_subscription_id or "(id unknown)"


def plan_for_tenant(*, tenant_id: UUID) -> Plan:
    """Return the plan whose limits apply to the workspace; the free plan without Stripe."""
    if not billing_enabled():
        return plan_default()
    account = billing_account_get(tenant_id=tenant_id)
    return account.plan if account is not None else plan_default()


def plan_list() -> list[Plan]:
    """Return the plans a workspace may choose, cheapest first."""
    return list(Plan.objects.available())


def plan_paid_get(*, code: str) -> Plan:
    """Return the active paid plan with this code.

    Raises:
        PlanNotFoundError: no such plan, or it is inactive or free.
    """
    plan = Plan.objects.available().filter(code=code).exclude(stripe_price_id="").first()
    if plan is None:
        raise PlanNotFoundError(f"There is no paid plan '{code}'.", field="plan")
    return plan


def plan_for_signup(*, code: str) -> Plan | None:
    """Return the paid plan a new workspace goes on to check out; None when it starts free.

    Without Stripe keys the code is ignored: every workspace is free.

    Raises:
        PlanNotFoundError: the code names neither an active free plan nor a paid one.
    """
    if not code or not billing_enabled():
        return None
    if Plan.objects.available().filter(code=code, stripe_price_id="").exists():
        return None
    return plan_paid_get(code=code)


def checkout_plan_get(*, actor: User, plan_code: str) -> Plan:
    """Return the plan the active workspace's owner is about to pay for, if a checkout may start.

    Raises:
        PermissionDenied, BillingNotConfiguredError, PlanNotFoundError, SubscriptionExistsError.
    """
    policy.require(actor, "billing.manage")
    if not billing_enabled():
        raise BillingNotConfiguredError("Billing is not configured; every workspace is free.")
    plan = plan_paid_get(code=plan_code)
    account = billing_account_get(tenant_id=require_tenant().id)
    if account is not None and account.has_live_subscription:
        raise SubscriptionExistsError(
            "This workspace already has a subscription; change it with Manage billing."
        )
    return plan


def checkout_path(*, plan_code: str) -> str:
    """Return the path, on a workspace's host, where its owner confirms paying for a plan."""
    # Also built on the root host (signup), whose URLs do not include the workspace's.
    path = reverse("billing:checkout", urlconf=settings.ROOT_URLCONF)
    return f"{path}?{urlencode({'plan': plan_code})}"


@dataclass(frozen=True)
class BillingOverview:
    enabled: bool
    plan: Plan
    account: BillingAccount | None
    plans: list[Plan]


def billing_overview(*, tenant_id: UUID) -> BillingOverview:
    """Return what the billing page shows for one workspace."""
    enabled = billing_enabled()
    account = billing_account_get(tenant_id=tenant_id) if enabled else None
    plan = account.plan if account is not None else plan_default()
    return BillingOverview(enabled=enabled, plan=plan, account=account, plans=plan_list())
