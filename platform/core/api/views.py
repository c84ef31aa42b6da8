"""Base classes for API views: one class per operation."""

from __future__ import annotations

from rest_framework.permissions import AllowAny
from rest_framework.views import APIView


class PublicApi(APIView):
    """An endpoint of the root host that anyone may call (signup, webhooks)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
