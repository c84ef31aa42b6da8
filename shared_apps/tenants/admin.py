from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin_sites import platform_admin_site
from core.errors import AppError
from shared_apps.tenants.models import Domain, Tenant
from shared_apps.tenants.services import tenant_resume, tenant_suspend


class DomainInline(admin.TabularInline[Domain, Tenant]):
    model = Domain
    extra = 0


@admin.register(Tenant, site=platform_admin_site)
class TenantAdmin(admin.ModelAdmin[Tenant]):
    list_display = ["subdomain", "name", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["subdomain", "name"]
    readonly_fields = ["id", "subdomain", "schema_name", "status", "created_at", "updated_at"]
    fields = ["id", "name", "subdomain", "schema_name", "status", "created_at", "updated_at"]
    inlines = [DomainInline]
    actions = ["suspend", "resume"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tenants are created by signup or `manage.py tenants create`

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # deletion archives first: `manage.py tenants delete`

    def _actor(self, request: HttpRequest) -> str:
        return f"admin:{getattr(request.user, 'email', 'unknown')}"

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            try:
                tenant_suspend(
                    tenant=tenant,
                    reason="suspended from the platform admin",
                    actor=self._actor(request),
                )
            except AppError as error:
                self.message_user(request, error.detail, messages.ERROR)
            else:
                self.message_user(request, f"Suspended {tenant.subdomain}.")

    @admin.action(description="Resume selected tenants")
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
