from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.throttling import SignupThrottle
from core.api.views import PublicApi
from shared_apps.signup.services import signup_complete
from shared_apps.tenants.addresses import LinkOrigin


class SignupApi(PublicApi):
    throttle_classes = [SignupThrottle]

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        subdomain = serializers.CharField(max_length=60, trim_whitespace=False)
        email = serializers.EmailField()
        password = serializers.CharField(trim_whitespace=False, write_only=True)
        # Ignored without Stripe keys (every workspace is free); see docs/billing.md.
        plan = serializers.SlugField(max_length=40, required=False, allow_blank=True)

    def post(self, request: Request) -> Response:
        payload = self.Input(data=request.data)
        payload.is_valid(raise_exception=True)
        result = signup_complete(**payload.validated_data, origin=LinkOrigin.of(request))
        tenant = result.created.tenant
        return Response(
            {
                "id": str(tenant.id),
                "subdomain": tenant.subdomain,
                "url": result.url,
                "handoff_url": result.handoff_url,
                "next_url": result.next_url,
            },
            status=201,
        )
