"""A tenant's own site: sign in, sign out, and the home page for signed-in users."""

from __future__ import annotations

from typing import cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View
from django.views.generic import TemplateView

from core.views import forbidden_response
from shared_apps.accounts import devices
from shared_apps.accounts.errors import HandoffInvalidError
from shared_apps.accounts.handoff import handoff_next_clean, handoff_peek, handoff_redeem
from shared_apps.accounts.models import User
from shared_apps.accounts.sign_in import LoginView as SignInView
from tenant_apps.members import policy
from tenant_apps.workspace.forms import TwoFactorRequireForm
from tenant_apps.workspace.selectors import workspace_settings_get
from tenant_apps.workspace.services import workspace_two_factor_require


class LoginView(SignInView):
    """Password, then the second factor for those who enrolled one (two-factor flow)."""


class LogoutView(auth_views.LogoutView):
    pass


class HandoffView(View):
    """Sign in the owner who just created this workspace on the root host.

    A paid plan chosen at signup continues to this workspace's checkout page (`next`).
    """

    template_name = "workspace/handoff.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        """Show whom the link signs in, and where; signing in takes the person's click."""
        token = request.GET.get("token", "")
        next_path = handoff_next_clean(request.GET.get("next", ""))
        try:
            user = handoff_peek(token)
        except HandoffInvalidError as error:
            return self.invalid(request, error, next_path)
        context = {"account": user, "token": token, "next": next_path or ""}
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest) -> HttpResponse:
        next_path = handoff_next_clean(request.POST.get("next", ""))
        try:
            user = handoff_redeem(request.POST.get("token", ""))
        except HandoffInvalidError as error:
            return self.invalid(request, error, next_path)
        login(request, user, backend="shared_apps.accounts.backends.EmailBackend")
        return redirect(next_path or "workspace:home")

    def invalid(
        self, request: HttpRequest, error: HandoffInvalidError, next_path: str | None
    ) -> HttpResponse:
        # The password sign-in continues to the same place.
        login_query = urlencode({"next": next_path}) if next_path else ""
        context = {"notice": error.detail, "login_query": login_query}
        return render(request, "workspace/handoff_invalid.html", context, status=400)


class HomeView(LoginRequiredMixin, TemplateView):
    template_name = "workspace/home.html"

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        return super().get_context_data(settings=workspace_settings_get(), **kwargs)


class SecurityView(LoginRequiredMixin, View):
    """Owners: whether the workspace requires two-factor sign-in, and their own devices."""

    def get(self, request: HttpRequest) -> HttpResponse:
        actor = cast(User, request.user)
        policy.require(actor, "workspace.settings")
        settings = workspace_settings_get()
        context = {
            "settings": settings,
            "devices": devices.device_list_for(actor),
            "backup_codes_remaining": devices.backup_codes_remaining(actor),
        }
        return render(request, "workspace/security.html", context)


class TwoFactorRequireView(LoginRequiredMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        form = TwoFactorRequireForm(request.POST)
        form.is_valid()  # a checkbox: absent means off
        required = bool(form.cleaned_data.get("required"))
        workspace_two_factor_require(actor=cast(User, request.user), required=required)
        messages.success(
            request,
            "Everyone now signs in with a second factor."
            if required
            else "Two-factor sign-in is no longer required.",
        )
        return redirect("workspace:security")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A workspace's handler403: the refusal in the workspace's own layout when signed in."""
    layout = "layouts/workspace.html" if request.user.is_authenticated else "base.html"
    return forbidden_response(request, layout=layout)
