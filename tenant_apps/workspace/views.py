"""A tenant's own site: sign in, sign out, and the home page for signed-in users."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView

from tenant_apps.workspace.selectors import workspace_settings_get


class LoginView(auth_views.LoginView):
    template_name = "workspace/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


class HomeView(LoginRequiredMixin, TemplateView):
    template_name = "workspace/home.html"

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        return super().get_context_data(settings=workspace_settings_get(), **kwargs)
