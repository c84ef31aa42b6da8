"""The workspace admin's people and invitations, for its owners and admins.

Read-only: roles change on the members page, people join through invitations, and the
actions below call the members services, which ask the policy (an admin cannot act on an
owner) and keep the last-owner rule.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from shared_apps.accounts.admin import UserAdmin
from shared_apps.accounts.models import User
from shared_apps.tenants.addresses import LinkOrigin
from tenant_apps.members import services
from tenant_apps.members.admin_site import PolicyModelAdmin, tenant_admin_site
from tenant_apps.members.models import Invitation
from tenant_apps.members.second_factor import member_second_factor_reset


@admin.register(User, site=tenant_admin_site)
class TenantUserAdmin(PolicyModelAdmin[User], UserAdmin):
    """A workspace's people: who they are and whether they may sign in."""

    list_display = ["email", "full_name", "role", "is_active", "last_login"]
    list_filter = ["role", "is_active"]
    # Passwords, superuser and groups mean nothing to the policy and are nobody else's business.
    fieldsets = (
        (None, {"fields": ("email", "full_name", "role")}),
        ("Access", {"fields": ("is_active", "is_staff")}),
        ("Dates", {"fields": ("joined_at", "last_login")}),
    )
    readonly_fields = [
        "email",
        "full_name",
        "role",
        "is_active",
        "is_staff",
        "joined_at",
        "last_login",
    ]
    actions = ["remove", "reset_second_factor"]

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        # Nobody sets another person's password. One's own changes on the admin's "Change
        # password" page (`admin:password_change`), which asks for the current one.
        raise PermissionDenied

    @admin.action(description="Remove from the workspace")
    def remove(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        return self.confirmed_action(
            request,
            queryset,
            lambda request, member: services.member_remove(
                actor=self.actor(request), member=member
            ),
            action="remove",
            question="Remove these people from the workspace? They can no longer sign in; "
            "their work stays.",
            button="Yes, remove them",
            done="Removed {obj} from the workspace.",
        )

    @admin.action(description="Reset second factor")
    def reset_second_factor(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> HttpResponse | None:
        return self.confirmed_action(
            request,
            queryset,
            lambda request, member: member_second_factor_reset(
                actor=self.actor(request), member=member
            ),
            action="reset_second_factor",
            question="Remove the second factor of these people? They set up a new one at "
            "their next sign-in, and are told by e-mail.",
            button="Yes, reset it",
            done="Reset the second factor of {obj}.",
        )


@admin.register(Invitation, site=tenant_admin_site)
class InvitationAdmin(PolicyModelAdmin[Invitation]):
    list_display = ["email", "role", "invited_by", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["email"]
    fields = readonly_fields = (
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    actions = ["revoke", "resend"]

    @admin.action(description="Revoke")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> HttpResponse | None:
        return self.confirmed_action(
            request,
            queryset,
            lambda request, invitation: services.invitation_revoke(
                actor=self.actor(request), invitation=invitation
            ),
            action="revoke",
            question="Revoke these invitations? Their links stop working.",
            button="Yes, revoke them",
            done="Revoked the invitation for {obj.email}.",
        )

    @admin.action(description="Resend")
    def resend(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        actor, origin = self.actor(request), LinkOrigin.of(request)
        self.run_service(
            request,
            queryset,
            lambda invitation: services.invitation_resend(
                actor=actor, invitation=invitation, origin=origin
            ),
            done="Sent the invitation for {obj.email} again.",
        )
