"""Reads of projects. 'Missing' and 'not yours' raise the same error."""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet

from shared_apps.accounts.models import User
from tenancy.storage import tenant_file_url
from tenant_apps.projects import policy
from tenant_apps.projects.errors import (
    AttachmentNotFoundError,
    ExportNotFoundError,
    ProjectNotFoundError,
    TaskNotFoundError,
)
from tenant_apps.projects.models import Attachment, Export, Project, Task

DASHBOARD_KEY = "projects:dashboard:open-tasks"
DASHBOARD_TTL = 600


def project_list(
    *, actor: User, status: str | None = None, search: str | None = None
) -> QuerySet[Project]:
    """Projects with their open task counts, in one query; of one status, or whose name
    contains `search` (any case), when given."""
    policy.require(actor, "project.view")
    projects = Project.objects.annotate(
        open_tasks=Count("tasks", filter=~Q(tasks__status=Task.Status.DONE))
    )
    if status is not None:
        projects = projects.filter(status=status)
    if search:
        projects = projects.filter(name__icontains=search)
    return projects.order_by("status", "name")


def project_get(*, actor: User, project_id: int) -> Project:
    policy.require(actor, "project.view")
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise ProjectNotFoundError("There is no such project in this workspace.")
    return project


def task_list_for_project(*, project: Project) -> QuerySet[Task]:
    return project.tasks.select_related("assignee")


def task_list(
    *,
    actor: User,
    project: Project,
    status: str | None = None,
    assignee_id: int | None = None,
) -> QuerySet[Task]:
    """The project's tasks, in one query; of one status, or assigned to one person, when given."""
    policy.require(actor, "task.view")
    tasks = project.tasks.all()
    if status is not None:
        tasks = tasks.filter(status=status)
    if assignee_id is not None:
        tasks = tasks.filter(assignee_id=assignee_id)
    return tasks


def task_get(*, actor: User, project: Project, task_id: int) -> Task:
    policy.require(actor, "task.view")
    task = project.tasks.filter(pk=task_id).first()
    if task is None:
        raise TaskNotFoundError("There is no such task in this project.")
    return task


def attachment_list(*, actor: User, project: Project) -> QuerySet[Attachment]:
    """The project's files, newest first, in one query."""
    policy.require(actor, "attachment.view", project)
    return project.attachments.all()


def attachment_get(*, actor: User, project: Project, attachment_id: int) -> Attachment:
    """Return one file of the project.

    Raises:
        AttachmentNotFoundError: no such file in this project (another project's included).
    """
    policy.require(actor, "attachment.view", project)
    attachment = project.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise AttachmentNotFoundError("There is no such file in this project.")
    return attachment


def attachment_link(attachment: Attachment, *, expires_in: int) -> str:
    """Return a signed link (a path on this workspace's host) that downloads the file under
    the name its uploader gave it. Hand it out only to whom `attachment_get` answered."""
    return tenant_file_url(
        attachment.file.name, expires_in=expires_in, filename=attachment.original_name
    )


def export_list(*, actor: User, project: Project) -> QuerySet[Export]:
    """The project's exports, newest first, in one query."""
    policy.require(actor, "project.export", project)
    return project.exports.all()


def export_get(*, actor: User, project: Project, export_id: int) -> Export:
    """Return one export of the project, whatever its status.

    Raises:
        ExportNotFoundError: no such export in this project (another project's included).
    """
    policy.require(actor, "project.export", project)
    export = project.exports.filter(pk=export_id).first()
    if export is None:
        raise ExportNotFoundError("There is no such export in this project.")
    return export


def export_link(export: Export, *, expires_in: int) -> str | None:
    """Return a signed link (a path on this workspace's host) to the export's CSV, or None
    while it is not ready. Hand it out only to whom `export_get` answered."""
    if not export.is_ready:
        return None
    filename = export.file.name.rsplit("/", 1)[-1]
    return tenant_file_url(export.file.name, expires_in=expires_in, filename=filename)


def member_list() -> QuerySet[User]:
    return User.objects.filter(is_active=True).order_by("email")


def dashboard_open_tasks() -> dict[str, int]:
    """Open tasks per active project, cached in this tenant's namespace until a task changes."""
    figures = cache.get(DASHBOARD_KEY)
    if figures is None:
        figures = dashboard_compute()
        cache.set(DASHBOARD_KEY, figures, DASHBOARD_TTL)
    return dict(figures)


def dashboard_compute() -> dict[str, int]:
    rows = (
        Task.objects.filter(project__status=Project.Status.ACTIVE)
        .exclude(status=Task.Status.DONE)
        .values_list("project__name")
        .annotate(open_tasks=Count("id"))
        .order_by("project__name")
    )
    return {name: count for name, count in rows}
