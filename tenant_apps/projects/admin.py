from django.contrib import admin

from tenant_apps.members.admin_site import PolicyModelAdmin, tenant_admin_site
from tenant_apps.projects.models import Attachment, Export, Project, Task


class TaskInline(admin.TabularInline[Task, Project]):
    model = Task
    extra = 0
    fields = ["title", "status", "assignee", "due_date"]


@admin.register(Project, site=tenant_admin_site)
class ProjectAdmin(PolicyModelAdmin):
    list_display = ["name", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    inlines = [TaskInline]


@admin.register(Task, site=tenant_admin_site)
class TaskAdmin(PolicyModelAdmin):
    list_display = ["title", "project", "status", "assignee", "due_date"]
    list_filter = ["status"]
    search_fields = ["title"]


@admin.register(Attachment, site=tenant_admin_site)
class AttachmentAdmin(PolicyModelAdmin):
    list_display = ["original_name", "project", "size", "created_at"]
    readonly_fields = ["file", "size", "content_type"]


@admin.register(Export, site=tenant_admin_site)
class ExportAdmin(PolicyModelAdmin):
    list_display = ["project", "status", "rows", "created_at"]
