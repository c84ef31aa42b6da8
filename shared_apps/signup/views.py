"""The public site on the root host: landing and signup pages."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.views.generic import FormView, TemplateView

from core.errors import AppError
from core.forms import form_error_add
from core.ratelimit import ThrottledError, rate_limit_hit
from core.views import throttled_response
from shared_apps.signup.forms import SignupForm
from shared_apps.signup.services import signup_complete
from shared_apps.tenants.addresses import LinkOrigin


class LandingView(TemplateView):
    template_name = "signup/landing.html"


class SignupView(FormView):
    template_name = "signup/signup.html"
    form_class = SignupForm

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        return super().get_context_data(root_domain=settings.ROOT_DOMAIN, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        # Pricing links land on /signup/?plan=<code> with that plan chosen.
        plan = self.request.GET.get("plan")
        return {"plan": plan} if plan else {}

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)
        # The form's answer redirects to the new workspace's host; CSP's form-action
        # covers redirects too, so this page allows the tenants' hosts as targets.
        response._csp_update = {"form-action": [f"*.{settings.ROOT_DOMAIN}:*"]}  # type: ignore[attr-defined]
        return response

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Every signup provisions a schema: the page counts against the API's limit.
        try:
            rate_limit_hit(request, scope="signup")
        except ThrottledError as error:
            return throttled_response(request, error)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: SignupForm) -> HttpResponse:
        try:
            result = signup_complete(**form.cleaned_data, origin=LinkOrigin.of(self.request))
        except AppError as error:
            form_error_add(form, error)
            return self.form_invalid(form)
        return HttpResponseRedirect(result.handoff_url)
