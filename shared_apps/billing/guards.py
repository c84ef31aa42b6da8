"""Billing's say in other apps' decisions, registered at start-up (see apps.py)."""

from __future__ import annotations

from shared_apps.billing.selectors import billing_live_subscription
from shared_apps.tenants.models import Tenant


def billing_deletion_guard(tenant: Tenant) -> str | None:
    """Refuse deleting a workspace whose subscription still bills (or will); else None."""
    subscription = billing_live_subscription(tenant.id)
    if subscription is None:
        return None
    return (
        f"'{tenant.subdomain}' has a live subscription ({subscription}); cancel it in "
        "Stripe before deleting the tenant."
    )
