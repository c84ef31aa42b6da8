"""Tenants and their domains in the platform admin: to look at, suspend and resume.

Tenants are created by signup or `manage.py tenants create` and deleted by
`manage.py tenants delete` (which archives first); the state changes go through the
audited services, like the command's.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from core.admin_sites import platform_admin_site
from core.errors import AppError
from shared_apps.tenants.models import Domain, Tenant
from shared_apps.tenants.services import tenant_resume, tenant_suspend


class SuspendForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why the tenant is suspended; recorded in the audit trail.",
    )


class DomainInline(admin.TabularInline[Domain, Tenant]):
    model = Domain
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Tenant, site=platform_admin_site)
class TenantAdmin(admin.ModelAdmin[Tenant]):
    list_display = ["subdomain", "name", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["subdomain", "name"]
    fields = readonly_fields = (
        "id",
        "name",
        "subdomain",
        "schema_name",
        "status",
        "created_at",
        "updated_at",
    )
    inlines = [DomainInline]
    actions = ["suspend", "resume"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tenants are created by signup or `manage.py tenants create`

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # state changes are the actions below, through the audited services

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # deletion archives first: `manage.py tenants delete`

    def has_status_permission(self, request: HttpRequest) -> bool:
        """Suspending and resuming: staff who may change tenants (every superuser)."""
        return bool(request.user.has_perm("tenants.change_tenant"))

    def _actor(self, request: HttpRequest) -> str:
        return f"admin:{getattr(request.user, 'email', 'unknown')}"

    @admin.action(description="Suspend selected tenants…", permissions=["status"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> HttpResponse | None:
        """Ask for the reason first; only a confirmed, non-empty reason suspends anything."""
        form = SuspendForm(request.POST if request.POST.get("post") == "yes" else None)
        if not form.is_valid():
            request.current_app = self.admin_site.name
            context: dict[str, Any] = {
                **self.admin_site.each_context(request),
                "title": "Suspend tenants",
                "opts": self.opts,
                "queryset": queryset,
                "form": form,
                "action": "suspend",
                "button": "Suspend",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/tenants/tenant/suspend_confirmation.html", context
            )
        for tenant in queryset:
            try:
                tenant_suspend(
                    tenant=tenant, reason=form.cleaned_data["reason"], actor=self._actor(request)
                )
            except AppError as error:
                self.message_user(request, error.detail, messages.ERROR)
            else:
                self.message_user(request, f"Suspended {tenant.subdomain}.")
        return None

    @admin.action(description="Resume selected tenants", permissions=["status"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            try:
                tenant_resume(tenant=tenant, actor=self._actor(request))
            except AppError as error:
                self.message_user(request, error.detail, messages.ERROR)
            else:
                self.message_user(request, f"Resumed {tenant.subdomain}.")


@admin.register(Domain, site=platform_admin_site)
class DomainAdmin(admin.ModelAdmin[Domain]):
    list_display = ["domain", "tenant", "is_primary"]
    search_fields = ["domain"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a tenant's domain is made with the tenant

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # routing follows domains: a changed one sends a host to another tenant

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
