"""Admin sites are closed to anyone without a verified second factor.

The platform admin (root host, at ADMIN_URL) manages tenants. The workspace admin builds on
`SecondFactorAdminSite` in `tenant_apps.members.admin_site`, where its access policy lives.
"""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, URLResolver
from django_otp import user_has_device
from two_factor.admin import AdminSiteOTPRequiredMixin


class SecondFactorAdminSite(AdminSiteOTPRequiredMixin, AdminSite):
    def get_urls(self) -> list[URLPattern | URLResolver]:
        # Django's "view on site" shortcut (`r/<content type>/<id>/`) resolves any content
        # type through the search path and redirects off the admin: neither site needs it.
        return [
            pattern
            for pattern in super().get_urls()
            if getattr(pattern, "name", None) != "view_on_site"
        ]

    def login(
        self, request: HttpRequest, extra_context: dict[str, object] | None = None
    ) -> HttpResponse:
        user = request.user
        # Signed in but not verified: enroll a device first, or prove the one you have.
        if user.is_authenticated and user.is_staff and not user_has_device(user):
            return redirect("two_factor:setup")
        return super().login(request, extra_context)


class PlatformAdminSite(SecondFactorAdminSite):
    site_header = "Platform administration"
    site_title = "Platform admin"
    index_title = "Tenants and platform staff"


platform_admin_site = PlatformAdminSite(name="platform_admin")
