"""Reads of plans and billing state (public schema; reachable from any tenant's search path)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.billing.stripe_gateway import billing_enabled


def plan_default() -> Plan:
    """Return the plan of every workspace that pays for nothing (seeded as `free`)."""
    return Plan.objects.get(is_default=True)


def billing_account_get(*, tenant_id: UUID) -> BillingAccount | None:
    return BillingAccount.objects.select_related("plan").filter(tenant_id=tenant_id).first()


def plan_for_tenant(*, tenant_id: UUID) -> Plan:
    """Return the plan whose limits apply to the workspace; the free plan without Stripe."""
    if not billing_enabled():
        return plan_default()
    account = billing_account_get(tenant_id=tenant_id)
    return account.plan if account is not None else plan_default()


def plan_list() -> list[Plan]:
    """Return the plans a workspace may choose, cheapest first."""
    return list(Plan.objects.available())


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
