from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from core.admin_sites import platform_admin_site
from shared_apps.billing.models import BillingAccount, Plan, StripeEvent


@admin.register(Plan, site=platform_admin_site)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = ["code", "name", "price_minor", "currency", "stripe_price_id", "is_default"]
    list_filter = ["is_active"]


@admin.register(BillingAccount, site=platform_admin_site)
class BillingAccountAdmin(admin.ModelAdmin[BillingAccount]):
    list_display = ["tenant", "plan", "subscription_status", "grace_ends_at"]
    list_filter = ["subscription_status", "plan", "is_suspended_by_billing"]
    search_fields = ["tenant__subdomain", "stripe_customer_id", "stripe_subscription_id"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # copied from Stripe; change it there


@admin.register(StripeEvent, site=platform_admin_site)
class StripeEventAdmin(admin.ModelAdmin[StripeEvent]):
    list_display = ["event_id", "type", "received_at", "processed_at", "attempts"]
    list_filter = ["type"]
    search_fields = ["event_id"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
