"""The workspace admin's people and invitations, for its owners and admins."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from shared_apps.accounts.admin import UserAdmin
from shared_apps.accounts.models import User
from tenant_apps.members.admin_site import PolicyModelAdmin, tenant_admin_site
from tenant_apps.members.models import Invitation


@admin.register(User, site=tenant_admin_site)
class TenantUserAdmin(PolicyModelAdmin, UserAdmin):
    """A workspace's people; roles change on the members page."""

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # removal deactivates, through the members service (last-owner rule)


@admin.register(Invitation, site=tenant_admin_site)
class InvitationAdmin(PolicyModelAdmin):
    list_display = ["email", "role", "created_at", "expires_at", "accepted_at"]
    readonly_fields = ["accepted_at"]
