from django.contrib import admin
from django.http import HttpRequest

from core.admin_sites import platform_admin_site
from shared_apps.audit.models import AuditRecord


@admin.register(AuditRecord, site=platform_admin_site)
class AuditRecordAdmin(admin.ModelAdmin[AuditRecord]):
    list_display = ["created_at", "actor", "action", "subdomain", "outcome"]
    list_filter = ["action", "outcome"]
    search_fields = ["subdomain", "actor"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
