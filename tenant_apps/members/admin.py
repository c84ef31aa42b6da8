from django.contrib import admin

from core.admin_sites import PolicyModelAdmin, tenant_admin_site
from tenant_apps.members.models import Invitation


@admin.register(Invitation, site=tenant_admin_site)
class InvitationAdmin(PolicyModelAdmin):
    list_display = ["email", "role", "created_at", "expires_at", "accepted_at"]
    readonly_fields = ["accepted_at"]
