"""Billing reads other apps rely on."""

from __future__ import annotations

import pytest

from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.billing.selectors import billing_live_subscription
from shared_apps.tenants.models import Tenant
from tests.factories import BillingAccountFactory


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (BillingAccount.Status.ACTIVE, "sub_1"),
        (BillingAccount.Status.TRIALING, "sub_1"),
        (BillingAccount.Status.PAST_DUE, "sub_1"),
        (BillingAccount.Status.UNPAID, "sub_1"),
        (BillingAccount.Status.PAUSED, "sub_1"),
        (BillingAccount.Status.CANCELED, None),
        (BillingAccount.Status.INCOMPLETE_EXPIRED, None),
        (BillingAccount.Status.INCOMPLETE, None),
        (BillingAccount.Status.NONE, None),
    ],
)
def test_live_subscription_is_named_until_it_ends(
    tenant_a: Tenant, status: str, expected: str | None
) -> None:
    BillingAccountFactory.create(
        tenant=tenant_a,
        plan=Plan.objects.get(code="free"),
        stripe_customer_id="cus_1",
        stripe_subscription_id="sub_1",
        subscription_status=status,
    )
    assert billing_live_subscription(tenant_a.id) == expected


def test_workspace_without_billing_account_has_no_live_subscription(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    BillingAccountFactory.create(
        tenant=tenant_a,
        plan=Plan.objects.get(code="free"),
        stripe_subscription_id="sub_a",
        subscription_status=BillingAccount.Status.ACTIVE,
    )
    assert billing_live_subscription(tenant_b.id) is None
