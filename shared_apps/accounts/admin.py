"""The same User model, in two admins: platform staff (public) and a workspace's people."""

from __future__ import annotations

from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from core.admin_sites import PolicyModelAdmin, platform_admin_site, tenant_admin_site
from shared_apps.accounts.models import User


class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "role", "is_active", "is_staff"]
    list_filter = ["role", "is_active", "is_staff"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "role")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "password1", "password2", "role")}),
    )
    readonly_fields = ["role"]  # roles change through members services (last-owner rule)


class TenantUserAdmin(PolicyModelAdmin, UserAdmin):
    """A workspace's people, for its owners and admins; roles change on the members page."""

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # removal deactivates, through the members service (last-owner rule)


platform_admin_site.register(User, UserAdmin)
tenant_admin_site.register(User, TenantUserAdmin)
