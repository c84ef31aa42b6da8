"""Everything that changes projects, tasks, attachments and exports."""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from datetime import date

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core.errors import name_clean
from core.text import single_line
from shared_apps.accounts.models import User
from shared_apps.billing.limits import plan_limit_require
from tenant_apps.events.catalogue import EventType
from tenant_apps.events.services import event_emit, timestamp_iso
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


def project_event_data(project: Project) -> dict[str, object]:
    """A project as webhooks describe it: the API's shape (docs/api.md)."""
    return {
        "id": project.pk,
        "name": project.name,
        "description": project.description,
        "status": project.status,
        "created_at": timestamp_iso(project.created_at),
        "updated_at": timestamp_iso(project.updated_at),
    }


def task_event_data(task: Task) -> dict[str, object]:
    """A task as webhooks describe it: the API's shape (docs/api.md)."""
    return {
        "id": task.pk,
        "project": task.project_id,
        "title": task.title,
        "status": task.status,
        "assignee": task.assignee_id,
        "due_date": task.due_date.isoformat() if task.due_date else None,
        "created_at": timestamp_iso(task.created_at),
        "updated_at": timestamp_iso(task.updated_at),
    }


@transaction.atomic
def project_create(*, actor: User, name: str, description: str = "") -> Project:
    """Create a project.

    Raises:
        PermissionDenied, PlanLimitReachedError.
    """
    policy.require(actor, "project.create")
    plan_limit_require(resource="projects", used=Project.objects.count)
    project = Project.objects.create(
        name=name_clean(name), description=description, created_by=actor
    )
    dashboard_invalidate()
    event_emit(event_type=EventType.PROJECT_CREATED, data=project_event_data(project))
    return project


@transaction.atomic
def project_update(*, actor: User, project: Project, name: str, description: str) -> Project:
    policy.require(actor, "project.update", project)
    project.name = name_clean(name)
    project.description = description
    project.save(update_fields=["name", "description", "updated_at"])
    dashboard_invalidate()
    event_emit(event_type=EventType.PROJECT_UPDATED, data=project_event_data(project))
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
        title=name_clean(title, field="title", max_length=200),
        status=Task.Status(status),
        assignee=_assignee(assignee_id),
        due_date=due_date,
    )
    dashboard_invalidate()
    event_emit(event_type=EventType.TASK_CREATED, data=task_event_data(task))
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
    task.title = name_clean(title, field="title", max_length=200)
    task.status = status
    task.assignee = _assignee(assignee_id)
    task.due_date = due_date
    task.save(update_fields=["title", "status", "assignee", "due_date", "updated_at"])
    dashboard_invalidate()
    event_emit(event_type=EventType.TASK_UPDATED, data=task_event_data(task))
    return task


STORED_NAME_MAX_BYTES = 80
ORIGINAL_NAME_MAX_CHARS = 200
_NOT_PORTABLE = re.compile(r"[^A-Za-z0-9_-]+")


def _split_extension(name: str) -> tuple[str, str]:
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 10:
        return name, ""
    return stem, extension


def attachment_display_name(uploaded: str | None) -> str:
    """Return the name a person gave the file, on one line, within 200 characters."""
    name = single_line((uploaded or "").replace("\\", "/").rsplit("/", 1)[-1]) or "file"
    if len(name) <= ORIGINAL_NAME_MAX_CHARS:
        return name
    stem, extension = _split_extension(name)
    keep = ORIGINAL_NAME_MAX_CHARS - (len(extension) + 1 if extension else 0)
    return f"{stem[:keep]}.{extension}" if extension else stem[:keep]


def storage_file_name(original: str) -> str:
    """Return a name safe for any file system or bucket: ASCII, short, the extension kept.

    The person's own name (any script, up to 200 characters) stays in `original_name` and
    is given back on download; a file system allows 255 bytes a name.
    """
    stem, extension = _split_extension(original)

    def portable(text: str) -> str:
        ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        return _NOT_PORTABLE.sub("_", ascii_text).strip("_")

    stored = portable(stem)[:STORED_NAME_MAX_BYTES] or "file"
    suffix = portable(extension)
    return f"{stored}.{suffix}" if suffix else stored


def attachment_max_bytes() -> int:
    """The largest file a person may attach (PROJECTS_ATTACHMENT_MAX_BYTES, 10 MB unless set)."""
    return int(getattr(settings, "PROJECTS_ATTACHMENT_MAX_BYTES", ATTACHMENT_MAX_BYTES_DEFAULT))


def attachment_too_large() -> AttachmentTooLargeError:
    """The error for a file above `attachment_max_bytes`, however it was found out."""
    limit = attachment_max_bytes()
    return AttachmentTooLargeError(f"Files may be up to {limit // (1024 * 1024)} MB.", field="file")


@transaction.atomic
def attachment_upload(*, actor: User, project: Project, upload: UploadedFile) -> Attachment:
    """Store a file under the tenant's prefix and record it on the project.

    Raises:
        AttachmentTooLargeError, PlanLimitReachedError.
    """
    policy.require(actor, "attachment.create", project)
    limit = attachment_max_bytes()
    if upload.size is not None and upload.size > limit:
        raise attachment_too_large()
    plan_limit_require(
        resource="storage_bytes",
        used=lambda: Attachment.objects.aggregate(total=Sum("size"))["total"] or 0,
        adding=upload.size or 0,
    )
    name = attachment_display_name(upload.name)
    attachment = Attachment(
        project=project,
        original_name=name,
        size=upload.size or 0,
        content_type=(upload.content_type or "")[:100],
        uploaded_by=actor,
    )
    attachment.file.save(storage_file_name(name), upload, save=False)
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


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """Return the cell so that a spreadsheet shows it as text: a leading `'` before a formula."""
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


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
                spreadsheet_safe(task.title),
                task.status,
                spreadsheet_safe(task.assignee.email) if task.assignee else "",
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
    event_emit(
        event_type=EventType.EXPORT_READY,
        data={
            "id": export.pk,
            "project": export.project_id,
            "rows": export.rows,
            "finished_at": timestamp_iso(export.finished_at),
        },
    )
    logger.info("export finished", extra={"export_id": export.pk, "rows": export.rows})
    return export


def export_fail(*, export_id: int, error: str) -> None:
    Export.objects.filter(pk=export_id).exclude(status=Export.Status.DONE).update(
        status=Export.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )
