"""Password reset pages, on a workspace's host for its people and on the root host for
platform staff: the active schema decides whose accounts they reach."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse_lazy
from django.views import View

from core.errors import AppError
from core.forms import form_error_add
from shared_apps.accounts.forms import NewPasswordForm, PasswordResetRequestForm
from shared_apps.accounts.models import User
from shared_apps.accounts.recovery import password_reset_complete, password_reset_request
from shared_apps.accounts.throttles import password_reset_wait
from shared_apps.accounts.tokens import password_reset_token
from shared_apps.tenants.addresses import workspace_url
from tenancy import current_tenant


def absolute_url_for(request: HttpRequest) -> Callable[[str], str]:
    """Links back to where the request came: the workspace's address, or the root host."""
    tenant = current_tenant()
    if tenant is None:
        return request.build_absolute_uri
    return lambda path: workspace_url(tenant.subdomain, path, request=request)


class PasswordResetRequestView(View):
    """Ask for a link by e-mail; the answer is the same whether the address has an account."""

    template_name = "accounts/password_reset_request.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, PasswordResetRequestForm())

    def page(
        self, request: HttpRequest, form: PasswordResetRequestForm, status: int = 200
    ) -> HttpResponse:
        context = {"form": form, "login_url": resolve_url(settings.LOGIN_URL)}
        return render(request, self.template_name, context, status=status)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = PasswordResetRequestForm(request.POST)
        wait = password_reset_wait(request, email=str(form.data.get("email", "")))
        if wait is not None:
            response = render(
                request,
                "accounts/password_reset_throttled.html",
                {"minutes": math.ceil(wait / 60), "login_url": resolve_url(settings.LOGIN_URL)},
                status=429,
            )
            response["Retry-After"] = str(wait)
            return response
        if not form.is_valid():
            return self.page(request, form, status=400)
        password_reset_request(
            email=form.cleaned_data["email"], absolute_url=absolute_url_for(request)
        )
        context = {"minutes": settings.PASSWORD_RESET_TIMEOUT // 60}
        return render(request, "accounts/password_reset_sent.html", context)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view (the token moves from the URL into the session before the form shows),
    with the tenant-bound token and the platform's password rules.

    A link that does not check answers 200, like Django's: a 4xx would log the path, and the
    path holds the token.
    """

    form_class = NewPasswordForm
    template_name = "accounts/password_reset_confirm.html"
    token_generator = password_reset_token
    success_url = reverse_lazy("accounts:password-reset-complete")

    def get_user(self, uidb64: str) -> User | None:
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def form_valid(self, form: NewPasswordForm) -> HttpResponse:
        sign_in_url = absolute_url_for(self.request)(resolve_url(settings.LOGIN_URL))
        try:
            password_reset_complete(
                user=form.user, password=form.cleaned_data["new_password"], sign_in_url=sign_in_url
            )
        except AppError as error:
            form_error_add(form, error)
            return self.form_invalid(form)
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())

    def form_invalid(self, form: Any) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
