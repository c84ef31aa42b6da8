from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from core.api.views import PublicApi
from shared_apps.billing.webhooks import stripe_event_receive


class StripeWebhookApi(PublicApi):
    """Stripe's deliveries: verified, stored by event id, processed by the worker."""

    def post(self, request: Request) -> Response:
        event = stripe_event_receive(
            payload=request.body, signature=request.META.get("HTTP_STRIPE_SIGNATURE")
        )
        return Response({"received": True, "id": event.event_id})
