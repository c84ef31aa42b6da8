"""Platform staff in the platform admin; a workspace's people are in `tenant_apps.members.admin`."""

from __future__ import annotations

from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from core.admin_sites import platform_admin_site
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


platform_admin_site.register(User, UserAdmin)
