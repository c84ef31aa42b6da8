"""A workspace's billing account row, as checkout and Stripe's events change it."""

from __future__ import annotations

from shared_apps.billing.models import BillingAccount
from shared_apps.billing.selectors import plan_default
from shared_apps.tenants.models import Tenant


def billing_account_lock(*, tenant: Tenant) -> BillingAccount:
    """Return the workspace's billing account locked until the transaction ends.

    The first time, the row is created on the default (free) plan, so there is a row to lock.
    """
    BillingAccount.objects.get_or_create(tenant=tenant, defaults={"plan": plan_default()})
    return BillingAccount.objects.select_for_update().select_related("tenant").get(pk=tenant.pk)
