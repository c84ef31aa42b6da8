"""A workspace that requires two-factor sign-in lets only verified sessions reach its pages.

A signed-in session that has not passed a second factor (`request.user.is_verified()`) is sent
to enrol one (through the gate in front of the setup wizard) when the person has none, or to
sign in again with their code when they have one; under /api/ it is refused with a 403
problem. Sign-in and enrolment themselves, password reset, invitations, static files, health
and the error catalogue stay open. The flag comes from the cache: no query on a warm request.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_otp import user_has_device

from core.problems import is_api_request, problem_response
from tenancy import current_tenant
from tenant_apps.workspace.errors import SecondFactorRequiredError
from tenant_apps.workspace.selectors import workspace_two_factor_is_required

OPEN_PATHS = (
    "/login/",
    "/logout/",
    "/account/login/",
    "/account/two_factor/setup/",  # the gate, the wizard and its completion page
    "/account/two_factor/qrcode/",
    "/password/",
    "/invitations/accept/",
    "/health/",
    "/errors/",
    "/robots.txt",
)


class TwoFactorRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self._refusal(request)
        return refusal if refusal is not None else self.get_response(request)

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path
        if current_tenant() is None or path.startswith((*OPEN_PATHS, settings.STATIC_URL)):
            return None
        if not workspace_two_factor_is_required():
            return None
        user = request.user
        if not user.is_authenticated or user.is_verified():  # type: ignore[attr-defined]  # OTPMiddleware
            return None
        if is_api_request(request):
            return problem_response(
                request,
                status=SecondFactorRequiredError.status,
                code=SecondFactorRequiredError.code,
                title=SecondFactorRequiredError.title,
                detail="This workspace requires two-factor sign-in; sign in with your code.",
            )
        back = urlencode({"next": request.get_full_path()})
        if not user_has_device(user):
            return redirect(f"{reverse('devices:confirm')}?{back}")
        # Signed in with the password alone: sign in again, this time with the code.
        logout(request)
        messages.info(
            request, "This workspace requires two-factor sign-in. Sign in with your code."
        )
        return redirect(f"{settings.LOGIN_URL}?{back}")
