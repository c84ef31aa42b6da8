"""Projects, tasks, attachments and exports in the workspace admin: to look at, not to edit.

Projects are created and changed on the projects pages, where the plan's limits and the
policy apply.
"""

from django.contrib import admin

from tenant_apps.members.admin_site import PolicyModelAdmin, PolicyTabularInline, tenant_admin_site
from tenant_apps.projects.models import Attachment, Export, Project, Task


class TaskInline(PolicyTabularInline[Task, Project]):
    model = Task
    fields = ["title", "status", "assignee", "due_date"]


@admin.register(Project, site=tenant_admin_site)
class ProjectAdmin(PolicyModelAdmin[Project]):
    list_display = ["name", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    inlines = [TaskInline]


@admin.register(Task, site=tenant_admin_site)
class TaskAdmin(PolicyModelAdmin[Task]):
    list_display = ["title", "project", "status", "assignee", "due_date"]
    list_filter = ["status"]
    search_fields = ["title"]


@admin.register(Attachment, site=tenant_admin_site)
class AttachmentAdmin(PolicyModelAdmin[Attachment]):
    list_display = ["original_name", "project", "size", "created_at"]
    # No `file`: files have no public URL; they are downloaded from the project page, which
    # checks the policy and hands out a short-lived signed link.
    fields = readonly_fields = (
        "original_name",
        "project",
        "size",
        "content_type",
        "uploaded_by",
        "created_at",
    )


@admin.register(Export, site=tenant_admin_site)
class ExportAdmin(PolicyModelAdmin[Export]):
    list_display = ["project", "status", "rows", "created_at"]
    fields = readonly_fields = (
        "project",
        "requested_by",
        "status",
        "rows",
        "error",
        "created_at",
        "finished_at",
    )
