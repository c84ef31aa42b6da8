"""Billing in the platform admin.

Plans are platform configuration and stay editable by platform staff. Billing accounts and
Stripe events are copies of what Stripe knows and the record of what we received from it:
read-only (a deleted event row would let a replayed webhook be processed twice).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from core.admin_sites import platform_admin_site
from shared_apps.billing.models import BillingAccount, Plan, StripeEvent


@admin.register(Plan, site=platform_admin_site)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = [
        "code",
        "name",
        "price_minor",
        "currency",
        "stripe_price_id",
        "api_requests_per_minute",
        "is_default",
    ]
    list_filter = ["is_active"]


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(BillingAccount, site=platform_admin_site)
class BillingAccountAdmin(ReadOnlyAdmin):
    """Copied from Stripe; change it there."""

    list_display = ["tenant", "plan", "subscription_status", "grace_ends_at"]
    list_filter = ["subscription_status", "plan", "is_suspended_by_billing"]
    search_fields = ["tenant__subdomain", "stripe_customer_id", "stripe_subscription_id"]


@admin.register(StripeEvent, site=platform_admin_site)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "received_at", "processed_at", "attempts"]
    list_filter = ["type"]
    search_fields = ["event_id"]
