"""The workspace's webhooks page (owners): parse, call a service, render."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from core.errors import AppError
from core.forms import form_error_add
from shared_apps.accounts.models import User
from tenant_apps.members import policy
from tenant_apps.webhooks import selectors, services
from tenant_apps.webhooks.forms import EndpointForm
from tenant_apps.webhooks.models import Endpoint


class WebhooksBase(LoginRequiredMixin, View):
    @property
    def actor(self) -> User:
        return cast(User, self.request.user)


class EndpointListView(WebhooksBase):
    def get(self, request: HttpRequest, form: EndpointForm | None = None) -> HttpResponse:
        context = {
            "endpoints": list(selectors.endpoint_list(actor=self.actor)),
            "deliveries": selectors.delivery_list_recent(actor=self.actor),
            "form": form or EndpointForm(),
        }
        return render(request, "webhooks/endpoint_list.html", context, status=400 if form else 200)


def _secret_page(
    request: HttpRequest, endpoint: Endpoint, secret: str, *, rotated: bool
) -> HttpResponse:
    # Rendered, not redirected: the secret lives only in this response.
    context = {"endpoint": endpoint, "secret": secret, "rotated": rotated}
    return render(request, "webhooks/endpoint_secret.html", context, status=200 if rotated else 201)


@method_decorator(never_cache, name="dispatch")
class EndpointCreateView(EndpointListView):
    def post(self, request: HttpRequest) -> HttpResponse:
        policy.require(self.actor, "webhook.manage")
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint, secret = services.endpoint_create(actor=self.actor, **form.cleaned_data)
            except AppError as error:
                form_error_add(form, error)
            else:
                return _secret_page(request, endpoint, secret, rotated=False)
        return self.get(request, form=form)


class EndpointDetailView(WebhooksBase):
    def get(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        endpoint = selectors.endpoint_get(actor=self.actor, endpoint_id=endpoint_id)
        deliveries = selectors.delivery_list_for_endpoint(actor=self.actor, endpoint=endpoint)
        context = {"endpoint": endpoint, "deliveries": deliveries}
        return render(request, "webhooks/endpoint_detail.html", context)


class EndpointDisableView(WebhooksBase):
    def post(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        endpoint = selectors.endpoint_get(actor=self.actor, endpoint_id=endpoint_id)
        services.endpoint_disable(actor=self.actor, endpoint=endpoint)
        messages.success(request, "The endpoint is disabled; nothing more is sent to it.")
        return redirect("webhooks:detail", endpoint_id=endpoint.pk)


class EndpointEnableView(WebhooksBase):
    def post(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        endpoint = selectors.endpoint_get(actor=self.actor, endpoint_id=endpoint_id)
        services.endpoint_enable(actor=self.actor, endpoint=endpoint)
        messages.success(request, "The endpoint is enabled; new events are sent to it.")
        return redirect("webhooks:detail", endpoint_id=endpoint.pk)


@method_decorator(never_cache, name="dispatch")
class EndpointRotateView(WebhooksBase):
    """GET asks for confirmation, POST rotates and shows the new secret once."""

    def get(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        endpoint = selectors.endpoint_get(actor=self.actor, endpoint_id=endpoint_id)
        context = {
            "title": "Rotate the signing secret",
            "question": (
                f"Make a new signing secret for {endpoint}? The current one keeps signing "
                "beside it for a day, so your receiver can switch over."
            ),
            "button": "Rotate secret",
            "cancel_url": reverse("webhooks:detail", args=[endpoint.pk]),
        }
        return render(request, "confirm.html", context)

    def post(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        endpoint = selectors.endpoint_get(actor=self.actor, endpoint_id=endpoint_id)
        endpoint, secret = services.endpoint_secret_rotate(actor=self.actor, endpoint=endpoint)
        return _secret_page(request, endpoint, secret, rotated=True)


class EndpointDeleteView(WebhooksBase):
    """GET asks for confirmation, POST deletes."""

    def get(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        endpoint = selectors.endpoint_get(actor=self.actor, endpoint_id=endpoint_id)
        context = {
            "title": "Delete the webhook endpoint",
            "question": f"Delete {endpoint} and its delivery log? Nothing more is sent to it.",
            "button": "Delete",
            "cancel_url": reverse("webhooks:detail", args=[endpoint.pk]),
        }
        return render(request, "confirm.html", context)

    def post(self, request: HttpRequest, endpoint_id: int) -> HttpResponse:
        endpoint = selectors.endpoint_get(actor=self.actor, endpoint_id=endpoint_id)
        services.endpoint_delete(actor=self.actor, endpoint=endpoint)
        messages.success(request, f"{endpoint} was deleted.")
        return redirect("webhooks:list")


class DeliveryResendView(WebhooksBase):
    def post(self, request: HttpRequest, delivery_id: int) -> HttpResponse:
        delivery = selectors.delivery_get(actor=self.actor, delivery_id=delivery_id)
        try:
            services.delivery_resend(actor=self.actor, delivery=delivery)
        except AppError as error:
            messages.error(request, error.detail)
        else:
            messages.success(request, f"{delivery.event_type} is being sent again.")
        return redirect("webhooks:detail", endpoint_id=delivery.endpoint_id)
