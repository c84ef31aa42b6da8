"""Project endpoints of a workspace's API (members signed in, or API keys)."""

from __future__ import annotations

from typing import cast

from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shared_apps.accounts.models import User
from tenant_apps.apikeys.authentication import ApiKeyScopePermission
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.projects.services import project_create


class ProjectCreateApi(APIView):
    permission_classes = [IsAuthenticated, ApiKeyScopePermission]
    api_key_scope = ApiKey.Scope.WRITE  # work, not administration

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        description = serializers.CharField()

    # What the schema generator reads (a decorator would import it while URLs load).
    serializer_class = Input

    def post(self, request: Request) -> Response:
        payload = self.Input(data=request.data)
        payload.is_valid(raise_exception=True)
        project = project_create(actor=cast(User, request.user), **payload.validated_data)
        return Response(self.Output(project).data, status=201)
