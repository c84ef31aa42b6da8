"""The sign-in page on every host: django-two-factor-auth's flow (password, then the second
factor), counted against the `sign_in` rate limit, and storing nothing for a visitor who
has not yet tried to sign in."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from two_factor.views import LoginView as TwoFactorLoginView

from core.ratelimit import ThrottledError, rate_limit_hit
from core.views import throttled_response


class LoginView(TwoFactorLoginView):
    redirect_authenticated_user = True

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        had_session = bool(request.session.session_key)
        response = super().get(request, *args, **kwargs)
        # The wizard resets its state on every GET; for a visitor without a session that
        # would write a session row per page view. The POST starts the state afresh.
        if not had_session and not request.user.is_authenticated:
            if isinstance(response, TemplateResponse):
                response.render()  # rendering touches the wizard's state too
            request.session.modified = False
        return response

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            rate_limit_hit(request, scope="sign_in")
        except ThrottledError as error:
            return throttled_response(request, error)
        return super().post(request, *args, **kwargs)
