"""Project pages for signed-in members of the workspace: parse, call a service, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views import View

from core.errors import AppError, NotFoundError
from core.forms import form_error_add
from shared_apps.accounts.models import User
from tenant_apps.projects import policy, selectors, services
from tenant_apps.projects.forms import AttachmentForm, ProjectForm, TaskForm
from tenant_apps.projects.models import Project

# A link the page redirects to at once: a minute is plenty.
DOWNLOAD_URL_SECONDS = 60

Found = TypeVar("Found")


def _or_404(lookup: Callable[[], Found]) -> Found:
    """What the selector found, or the 404 page for its "no such ..." error."""
    try:
        return lookup()
    except NotFoundError as error:
        raise Http404(error.detail) from None


def _members() -> list[tuple[int, str]]:
    return [(user.pk, user.email) for user in selectors.member_list()]


class MemberView(LoginRequiredMixin, View):
    """A page for signed-in members of the workspace."""

    @property
    def actor(self) -> User:
        return cast(User, self.request.user)  # LoginRequiredMixin let only members in


class ProjectView(MemberView):
    """Resolves the project in the URL for the signed-in member, or answers 404."""

    def project(self, project_id: int) -> Project:
        return _or_404(lambda: selectors.project_get(actor=self.actor, project_id=project_id))


class ProjectListView(MemberView):
    def get(self, request: HttpRequest) -> HttpResponse:
        context = {
            "projects": selectors.project_list(actor=self.actor),
            "dashboard": selectors.dashboard_open_tasks(),
        }
        return render(request, "projects/project_list.html", context)


class ProjectCreateView(MemberView):
    def get(self, request: HttpRequest) -> HttpResponse:
        policy.require(self.actor, "project.create")  # the form is shown only to those it serves
        return render(request, "projects/project_form.html", {"form": ProjectForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ProjectForm(request.POST)
        if form.is_valid():
            try:
                project = services.project_create(actor=self.actor, **form.cleaned_data)
            except AppError as error:
                form_error_add(form, error)
            else:
                return redirect("projects:detail", project_id=project.pk)
        return render(request, "projects/project_form.html", {"form": form}, status=400)


class ProjectUpdateView(ProjectView):
    def get(self, request: HttpRequest, project_id: int) -> HttpResponse:
        project = self.project(project_id)
        policy.require(self.actor, "project.update", project)
        form = ProjectForm(initial={"name": project.name, "description": project.description})
        return render(request, "projects/project_form.html", {"form": form, "project": project})

    def post(self, request: HttpRequest, project_id: int) -> HttpResponse:
        project = self.project(project_id)
        form = ProjectForm(request.POST)
        if form.is_valid():
            services.project_update(actor=self.actor, project=project, **form.cleaned_data)
            return redirect("projects:detail", project_id=project.pk)
        context = {"form": form, "project": project}
        return render(request, "projects/project_form.html", context, status=400)


class ProjectDetailView(ProjectView):
    def get(self, request: HttpRequest, project_id: int) -> HttpResponse:
        return self.render_detail(request, self.project(project_id))

    def render_detail(
        self, request: HttpRequest, project: Project, status: int = 200, **forms: Any
    ) -> HttpResponse:
        context = {
            "project": project,
            "tasks": selectors.task_list_for_project(project=project),
            "attachments": selectors.attachment_list(actor=self.actor, project=project),
            "exports": selectors.export_list(actor=self.actor, project=project)[:5],
            "task_form": forms.get("task_form") or TaskForm(members=_members()),
            "attachment_form": forms.get("attachment_form") or AttachmentForm(),
        }
        return render(request, "projects/project_detail.html", context, status=status)


class TaskCreateView(ProjectDetailView):
    def post(self, request: HttpRequest, project_id: int) -> HttpResponse:
        project = self.project(project_id)
        form = TaskForm(request.POST, members=_members())
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.task_create(
                    actor=self.actor,
                    project=project,
                    title=data["title"],
                    status=data["status"],
                    assignee_id=data["assignee"],
                    due_date=data["due_date"],
                )
            except AppError as error:
                form_error_add(form, error)
            else:
                return redirect("projects:detail", project_id=project.pk)
        return self.render_detail(request, project, status=400, task_form=form)


class TaskUpdateView(ProjectView):
    def get(self, request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
        project = self.project(project_id)
        task = self._task(project, task_id)
        form = TaskForm(
            members=_members(),
            initial={
                "title": task.title,
                "status": task.status,
                "assignee": task.assignee_id,
                "due_date": task.due_date,
            },
        )
        context = {"form": form, "project": project, "task": task}
        return render(request, "projects/task_form.html", context)

    def post(self, request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
        project = self.project(project_id)
        task = self._task(project, task_id)
        form = TaskForm(request.POST, members=_members())
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.task_update(
                    actor=self.actor,
                    task=task,
                    title=data["title"],
                    status=data["status"],
                    assignee_id=data["assignee"],
                    due_date=data["due_date"],
                )
            except AppError as error:
                form_error_add(form, error)
            else:
                return redirect("projects:detail", project_id=project.pk)
        context = {"form": form, "project": project, "task": task}
        return render(request, "projects/task_form.html", context, status=400)

    def _task(self, project: Project, task_id: int) -> Any:
        return _or_404(
            lambda: selectors.task_get(actor=self.actor, project=project, task_id=task_id)
        )


class AttachmentUploadView(ProjectDetailView):
    def post(self, request: HttpRequest, project_id: int) -> HttpResponse:
        project = self.project(project_id)
        form = AttachmentForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                services.attachment_upload(
                    actor=self.actor,
                    project=project,
                    upload=form.cleaned_data["file"],
                )
            except AppError as error:
                form.add_error("file", error.detail)
            else:
                return redirect("projects:detail", project_id=project.pk)
        return self.render_detail(request, project, status=400, attachment_form=form)


class AttachmentDownloadView(ProjectView):
    def get(self, request: HttpRequest, project_id: int, attachment_id: int) -> HttpResponse:
        project = self.project(project_id)
        attachment = _or_404(
            lambda: selectors.attachment_get(
                actor=self.actor, project=project, attachment_id=attachment_id
            )
        )
        return HttpResponseRedirect(
            selectors.attachment_link(attachment, expires_in=DOWNLOAD_URL_SECONDS)
        )


class ExportCreateView(ProjectView):
    def post(self, request: HttpRequest, project_id: int) -> HttpResponse:
        services.export_request(actor=self.actor, project=self.project(project_id))
        return redirect("projects:detail", project_id=project_id)


class ExportDownloadView(ProjectView):
    def get(self, request: HttpRequest, project_id: int, export_id: int) -> HttpResponse:
        project = self.project(project_id)
        export = _or_404(
            lambda: selectors.export_get(actor=self.actor, project=project, export_id=export_id)
        )
        url = selectors.export_link(export, expires_in=DOWNLOAD_URL_SECONDS)
        if url is None:
            raise Http404("This export is not ready.")
        return HttpResponseRedirect(url)
