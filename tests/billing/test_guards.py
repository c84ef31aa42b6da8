"""Billing's deletion guard: a workspace with a live subscription is not deleted."""

from __future__ import annotations

from shared_apps.billing.guards import billing_deletion_guard
from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.tenants.guards import deletion_refusals
from shared_apps.tenants.models import Tenant
from tests.factories import BillingAccountFactory


def test_guard_refuses_deleting_a_workspace_with_a_live_subscription(tenant_a: Tenant) -> None:
    BillingAccountFactory.create(
        tenant=tenant_a,
        plan=Plan.objects.get(code="free"),
        stripe_customer_id="cus_1",
        stripe_subscription_id="sub_1",
        subscription_status=BillingAccount.Status.ACTIVE,
    )
    reason = (
        f"'{tenant_a.subdomain}' has a live subscription (sub_1); cancel it in Stripe before "
        "deleting the tenant."
    )

    assert billing_deletion_guard(tenant_a) == reason
    assert reason in deletion_refusals(tenant_a)  # registered by BillingConfig.ready()


def test_guard_lets_a_workspace_without_live_subscription_go(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    BillingAccountFactory.create(
        tenant=tenant_a,
        plan=Plan.objects.get(code="free"),
        stripe_subscription_id="sub_1",
        subscription_status=BillingAccount.Status.CANCELED,
    )

    assert billing_deletion_guard(tenant_a) is None
    assert billing_deletion_guard(tenant_b) is None  # no billing account at all
    assert not any("live subscription" in reason for reason in deletion_refusals(tenant_a))
