"""The workspace's billing page (owners only): parse, call a service, render."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views import View

from core.errors import AppError
from core.forms import form_error_add
from shared_apps.accounts.models import User
from shared_apps.billing import policy
from shared_apps.billing.checkout import billing_checkout_start, billing_portal_open
from shared_apps.billing.forms import PlanChoiceForm
from shared_apps.billing.models import Plan
from shared_apps.billing.selectors import billing_overview, checkout_plan_get
from shared_apps.tenants.addresses import workspace_url
from tenancy import require_tenant

# The billing forms answer with a redirect to Stripe; CSP's form-action covers redirects.
STRIPE_REDIRECT_HOSTS = ["https://checkout.stripe.com", "https://billing.stripe.com"]


class BillingView(LoginRequiredMixin, View):
    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request)

    def page(
        self,
        request: HttpRequest,
        *,
        form: PlanChoiceForm | None = None,
        chosen: Plan | None = None,
    ) -> HttpResponse:
        policy.require(self.actor, "billing.view")
        overview = billing_overview(tenant_id=require_tenant().id)
        context: dict[str, Any] = {
            "overview": overview,
            "form": form or PlanChoiceForm(),
            "chosen": chosen,
            "checkout": request.GET.get("checkout", ""),
        }
        response = render(request, "billing/billing.html", context, status=400 if form else 200)
        response._csp_update = {"form-action": STRIPE_REDIRECT_HOSTS}  # type: ignore[attr-defined]
        return response


class BillingCheckoutView(BillingView):
    def get(self, request: HttpRequest) -> HttpResponse:
        """Ask before paying: signup sends the new owner here with the plan they chose.

        A GET only shows the plan and a "Continue to payment" button; the checkout itself
        stays a POST, behind CSRF.
        """
        form = PlanChoiceForm(request.GET)
        if not form.is_valid():
            return redirect("billing:page")
        try:
            plan = checkout_plan_get(actor=self.actor, plan_code=form.cleaned_data["plan"])
        except AppError as error:
            form_error_add(form, error)
            return self.page(request, form=form)
        return self.page(request, chosen=plan)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = PlanChoiceForm(request.POST)
        if form.is_valid():
            try:
                url = billing_checkout_start(
                    actor=self.actor,
                    plan_code=form.cleaned_data["plan"],
                    site_url=workspace_url(require_tenant().subdomain, request=request),
                )
            except AppError as error:
                form_error_add(form, error)
            else:
                return HttpResponseRedirect(url)
        return self.page(request, form=form)


class BillingPortalView(BillingView):
    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            site_url = workspace_url(require_tenant().subdomain, request=request)
            url = billing_portal_open(actor=self.actor, site_url=site_url)
        except AppError as error:
            messages.error(request, error.detail)
            return redirect("billing:page")
        return HttpResponseRedirect(url)
