"""Everything that changes projects, tasks, attachments and exports."""

from __future__ import annotations

import csv
import io
import logging
from datetime import date

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.billing.limits import plan_limit_require
from tenant_apps.projects import policy
from tenant_apps.projects.errors import (
    AssigneeInvalidError,
    AttachmentTooLargeError,
    ProjectArchivedError,
)
from tenant_apps.projects.models import Attachment, Export, Project, Task
from tenant_apps.projects.selectors import DASHBOARD_KEY

logger = logging.getLogger(__name__)

ATTACHMENT_MAX_BYTES_DEFAULT = 10 * 1024 * 1024


def dashboard_invalidate() -> None:
    """Forget the active tenant's cached dashboard once the change commits."""
    transaction.on_commit(lambda: cache.delete(DASHBOARD_KEY))


@transaction.atomic
def project_create(*, actor: User, name: str, description: str = "") -> Project:
    """Create a project.

    Raises:
        PermissionDenied, PlanLimitReachedError.
    """
    policy.require(actor, "project.create")
    plan_limit_require(resource="projects", used=Project.objects.count)
    project = Project.objects.create(name=name.strip(), description=description, created_by=actor)
    dashboard_invalidate()
    return project


@transaction.atomic
def project_update(*, actor: User, project: Project, name: str, description: str) -> Project:
    policy.require(actor, "project.update", project)
    project.name = name.strip()
    project.description = description
    project.save(update_fields=["name", "description", "updated_at"])
    dashboard_invalidate()
    return project


def _assignee(assignee_id: int | None) -> User | None:
    if assignee_id is None:
        return None
    assignee = User.objects.filter(pk=assignee_id, is_active=True).first()
    if assignee is None:
        raise AssigneeInvalidError("Choose a member of this workspace.", field="assignee")
    return assignee


@transaction.atomic
def task_create(
    *,
    actor: User,
    project: Project,
    title: str,
    status: str = Task.Status.TODO,
    assignee_id: int | None = None,
    due_date: date | None = None,
) -> Task:
    """Add a task to a project, in the status chosen (to do unless said otherwise).

    Raises:
        ProjectArchivedError, AssigneeInvalidError.
    """
    policy.require(actor, "task.create", project)
    if project.is_archived:
        raise ProjectArchivedError("This project is archived; its tasks cannot change.")
    task = Task.objects.create(
        project=project,
        title=title.strip(),
        status=Task.Status(status),
        assignee=_assignee(assignee_id),
        due_date=due_date,
    )
    dashboard_invalidate()
    return task


@transaction.atomic
def task_update(
    *,
    actor: User,
    task: Task,
    title: str,
    status: str,
    assignee_id: int | None,
    due_date: date | None,
) -> Task:
    policy.require(actor, "task.update", task)
    if task.project.is_archived:
        raise ProjectArchivedError("This project is archived; its tasks cannot change.")
    task.title = title.strip()
    task.status = status
    task.assignee = _assignee(assignee_id)
    task.due_date = due_date
    task.save(update_fields=["title", "status", "assignee", "due_date", "updated_at"])
    dashboard_invalidate()
    return task


@transaction.atomic
def attachment_upload(*, actor: User, project: Project, upload: UploadedFile) -> Attachment:
    """Store a file under the tenant's prefix and record it on the project.

    Raises:
        AttachmentTooLargeError, PlanLimitReachedError.
    """
    policy.require(actor, "attachment.create", project)
    limit = getattr(settings, "PROJECTS_ATTACHMENT_MAX_BYTES", ATTACHMENT_MAX_BYTES_DEFAULT)
    if upload.size is not None and upload.size > limit:
        raise AttachmentTooLargeError(
            f"Files may be up to {limit // (1024 * 1024)} MB.", field="file"
        )
    plan_limit_require(
        resource="storage_bytes",
        used=lambda: Attachment.objects.aggregate(total=Sum("size"))["total"] or 0,
        adding=upload.size or 0,
    )
    name = (upload.name or "file").rsplit("/", 1)[-1][:200]
    attachment = Attachment(
        project=project,
        original_name=name,
        size=upload.size or 0,
        content_type=(upload.content_type or "")[:100],
        uploaded_by=actor,
    )
    attachment.file.save(name, upload, save=False)
    attachment.save()
    logger.info("attachment stored", extra={"project_id": project.pk, "size": attachment.size})
    return attachment


@transaction.atomic
def export_request(*, actor: User, project: Project) -> Export:
    """Queue a CSV export of the project's tasks; the worker builds it."""
    from tenant_apps.projects.tasks import export_build_task

    policy.require(actor, "project.export", project)
    export = Export.objects.create(project=project, requested_by=actor)
    # Celery's stubs predate delay_on_commit; TenantTask captures the tenant at this call.
    export_build_task.delay_on_commit(export_id=export.pk)  # type: ignore[attr-defined]
    logger.info("export requested", extra={"export_id": export.pk, "project_id": project.pk})
    return export


def export_build(*, export: Export) -> Export:
    """Write the project's tasks as CSV to the tenant's storage and mark the export ready."""
    Export.objects.filter(pk=export.pk).update(status=Export.Status.RUNNING)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "title", "status", "assignee", "due_date", "created_at"])
    tasks = export.project.tasks.select_related("assignee").order_by("id")
    for task in tasks:
        writer.writerow(
            [
                task.pk,
                task.title,
                task.status,
                task.assignee.email if task.assignee else "",
                task.due_date.isoformat() if task.due_date else "",
                task.created_at.isoformat(),
            ]
        )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    export.file.save(
        f"tasks-{export.project_id}-{stamp}-{export.pk}.csv",
        ContentFile(buffer.getvalue().encode()),
        save=False,
    )
    export.rows = len(tasks)
    export.status = Export.Status.DONE
    export.finished_at = timezone.now()
    export.save(update_fields=["file", "rows", "status", "finished_at"])
    logger.info("export finished", extra={"export_id": export.pk, "rows": export.rows})
    return export


def export_fail(*, export_id: int, error: str) -> None:
    Export.objects.filter(pk=export_id).exclude(status=Export.Status.DONE).update(
        status=Export.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )
