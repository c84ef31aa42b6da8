"""Two admin sites, both closed to anyone without a verified second factor.

The platform admin (root host, at ADMIN_URL) manages tenants; the tenant admin
(`<subdomain>.<ROOT_DOMAIN>/admin/`) shows only that workspace's own rows, because every
query runs in the tenant's schema, and only to its owners and admins.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_otp import user_has_device
from two_factor.admin import AdminSiteOTPRequiredMixin


class _SecondFactorRequired(AdminSiteOTPRequiredMixin, AdminSite):
    def login(
        self, request: HttpRequest, extra_context: dict[str, object] | None = None
    ) -> HttpResponse:
        user = request.user
        # Signed in but not verified: enroll a device first, or prove the one you have.
        if user.is_authenticated and user.is_staff and not user_has_device(user):
            return redirect("two_factor:setup")
        return super().login(request, extra_context)


class PlatformAdminSite(_SecondFactorRequired):
    site_header = "Platform administration"
    site_title = "Platform admin"
    index_title = "Tenants and platform staff"


class TenantAdminSite(_SecondFactorRequired):
    site_header = "Workspace administration"
    site_title = "Workspace admin"
    index_title = "This workspace's data"

    def has_permission(self, request: HttpRequest) -> bool:
        from tenant_apps.members import policy

        return bool(super().has_permission(request)) and policy.can(request.user, "admin.access")  # type: ignore[arg-type]


class PolicyModelAdmin(admin.ModelAdmin):
    """Tenant admin pages: owners and admins may view and change, as the policy says."""

    def _allowed(self, request: HttpRequest) -> bool:
        from tenant_apps.members import policy

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


platform_admin_site = PlatformAdminSite(name="platform_admin")
tenant_admin_site = TenantAdminSite(name="tenant_admin")
