"""API keys in the workspace admin: read-only, with a Revoke action calling the service."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from tenant_apps.apikeys import services
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.members.admin_site import PolicyModelAdmin, tenant_admin_site


@admin.register(ApiKey, site=tenant_admin_site)
class ApiKeyAdmin(PolicyModelAdmin[ApiKey]):
    list_display = [
        "prefix",
        "name",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    search_fields = ["prefix", "name"]
    # Never the hash: it is of no use to a person and of some use to an attacker.
    fields = readonly_fields = (
        "prefix",
        "name",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).select_related("created_by")

    @admin.action(description="Revoke")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> HttpResponse | None:
        return self.confirmed_action(
            request,
            queryset,
            lambda request, key: services.api_key_revoke(actor=self.actor(request), key=key),
            action="revoke",
            question="Revoke these API keys? Programs using them are refused from now on.",
            button="Yes, revoke them",
            done="Revoked {obj}.",
        )
