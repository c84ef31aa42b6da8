"""The workspace admin (`<subdomain>.<ROOT_DOMAIN>/admin/`): only that workspace's rows,
because every query runs in its schema, and only for its owners and admins."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from core.admin_sites import SecondFactorAdminSite
from tenant_apps.members import policy


class TenantAdminSite(SecondFactorAdminSite):
    site_header = "Workspace administration"
    site_title = "Workspace admin"
    index_title = "This workspace's data"

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(super().has_permission(request)) and policy.can(request.user, "admin.access")  # type: ignore[arg-type]


class PolicyModelAdmin(admin.ModelAdmin):
    """Workspace admin pages: owners and admins may view and change, as the policy says."""

    def _allowed(self, request: HttpRequest) -> bool:
        return policy.can(request.user, "admin.access")  # type: ignore[arg-type]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self._allowed(request)

    def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
        return self._allowed(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self._allowed(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self._allowed(request)


tenant_admin_site = TenantAdminSite(name="tenant_admin")
