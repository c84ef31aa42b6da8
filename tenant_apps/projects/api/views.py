"""Project endpoints of a workspace's API: projects, their tasks, files and exports.

Each class is one operation: it parses, calls a selector or service, renders. Who may do
what is the services' and selectors' business (tenant_apps.members.policy), as on the pages.
"""

from __future__ import annotations

from typing import Any, cast

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.inputs import StrictInput, parse_body, parse_query
from core.api.pagination import CursorPage, paginated
from core.api.views import TenantApi
from shared_apps.accounts.models import User
from tenant_apps.members.policy import ApiKeyScope
from tenant_apps.projects.api.parsers import AttachmentUploadParser
from tenant_apps.projects.api.serializers import (
    AttachmentSummary,
    ExportSummary,
    FileUpload,
    ProjectSummary,
    TaskSummary,
)
from tenant_apps.projects.models import Project, Task
from tenant_apps.projects.selectors import (
    attachment_get,
    attachment_list,
    export_get,
    export_list,
    project_get,
    project_list,
    task_get,
    task_list,
)
from tenant_apps.projects.services import (
    attachment_upload,
    export_request,
    project_create,
    project_update,
    task_create,
    task_update,
)


def _actor(request: Request) -> User:
    # TenantApi lets only signed-in people through.
    return cast(User, request.user)


# PROJECTS -------------------------------------------------------------------------------


class ProjectListApi(TenantApi):
    class Filters(serializers.Serializer):
        status = serializers.ChoiceField(choices=Project.Status.choices, required=False)
        search = serializers.CharField(required=False, max_length=120)

    Output = ProjectSummary
    pagination_class = CursorPage

    def get(self, request: Request) -> Response:
        projects = project_list(actor=_actor(request), **parse_query(self.Filters, request))
        return paginated(self, request, projects, self.Output)


class ProjectCreateApi(TenantApi):
    api_key_scope = ApiKeyScope.WRITE  # work, not administration

    class Input(StrictInput):
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    Output = ProjectSummary

    def post(self, request: Request) -> Response:
        project = project_create(actor=_actor(request), **parse_body(self.Input, request))
        return Response(self.Output(project).data, status=201)


class ProjectDetailApi(TenantApi):
    Output = ProjectSummary

    def get(self, request: Request, project_id: int) -> Response:
        project = project_get(actor=_actor(request), project_id=project_id)
        return Response(self.Output(project).data)


class ProjectUpdateApi(TenantApi):
    api_key_scope = ApiKeyScope.WRITE  # work, not administration

    class Input(StrictInput):
        name = serializers.CharField(max_length=120, required=False)
        description = serializers.CharField(required=False, allow_blank=True)

    Output = ProjectSummary

    def patch(self, request: Request, project_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        # A PATCH names what changes; the service takes the whole editable state.
        changes = {"name": project.name, "description": project.description}
        changes.update(parse_body(self.Input, request))
        project = project_update(actor=actor, project=project, **changes)
        return Response(self.Output(project).data)


# TASKS ----------------------------------------------------------------------------------


class TaskListApi(TenantApi):
    class Filters(serializers.Serializer):
        status = serializers.ChoiceField(choices=Task.Status.choices, required=False)
        assignee = serializers.IntegerField(required=False, min_value=1, source="assignee_id")

    Output = TaskSummary
    pagination_class = CursorPage

    def get(self, request: Request, project_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        tasks = task_list(actor=actor, project=project, **parse_query(self.Filters, request))
        return paginated(self, request, tasks, self.Output)


class TaskCreateApi(TenantApi):
    api_key_scope = ApiKeyScope.WRITE  # work, not administration

    class Input(StrictInput):
        title = serializers.CharField(max_length=200)
        status = serializers.ChoiceField(choices=Task.Status.choices, required=False)
        assignee = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, source="assignee_id"
        )
        due_date = serializers.DateField(required=False, allow_null=True)

    Output = TaskSummary

    def post(self, request: Request, project_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        task = task_create(actor=actor, project=project, **parse_body(self.Input, request))
        return Response(self.Output(task).data, status=201)


class TaskUpdateApi(TenantApi):
    api_key_scope = ApiKeyScope.WRITE  # work, not administration

    class Input(StrictInput):
        title = serializers.CharField(max_length=200, required=False)
        status = serializers.ChoiceField(choices=Task.Status.choices, required=False)
        assignee = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, source="assignee_id"
        )
        due_date = serializers.DateField(required=False, allow_null=True)

    Output = TaskSummary

    def patch(self, request: Request, project_id: int, task_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        task = task_get(actor=actor, project=project, task_id=task_id)
        # A PATCH names what changes; the service takes the whole editable state.
        changes: dict[str, Any] = {
            "title": task.title,
            "status": task.status,
            "assignee_id": task.assignee_id,
            "due_date": task.due_date,
        }
        changes.update(parse_body(self.Input, request))
        task = task_update(actor=actor, task=task, **changes)
        return Response(self.Output(task).data)


# ATTACHMENTS ----------------------------------------------------------------------------


class AttachmentListApi(TenantApi):
    Output = AttachmentSummary
    pagination_class = CursorPage

    def get(self, request: Request, project_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        attachments = attachment_list(actor=actor, project=project)
        return paginated(self, request, attachments, self.Output)


class AttachmentUploadApi(TenantApi):
    api_key_scope = ApiKeyScope.WRITE  # work, not administration
    # The one endpoint that takes a file: multipart/form-data, here only.
    parser_classes = [AttachmentUploadParser]

    class Input(StrictInput):
        file = FileUpload()

    Output = AttachmentSummary

    def post(self, request: Request, project_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        upload = parse_body(self.Input, request)["file"]
        attachment = attachment_upload(actor=actor, project=project, upload=upload)
        return Response(self.Output(attachment, context={"request": request}).data, status=201)


class AttachmentDetailApi(TenantApi):
    Output = AttachmentSummary

    def get(self, request: Request, project_id: int, attachment_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        attachment = attachment_get(actor=actor, project=project, attachment_id=attachment_id)
        return Response(self.Output(attachment, context={"request": request}).data)


# EXPORTS --------------------------------------------------------------------------------


class ExportListApi(TenantApi):
    Output = ExportSummary
    pagination_class = CursorPage

    def get(self, request: Request, project_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        exports = export_list(actor=actor, project=project)
        return paginated(self, request, exports, self.Output)


class ExportRequestApi(TenantApi):
    api_key_scope = ApiKeyScope.WRITE  # work, not administration
    # Accepted, not done: the worker builds the CSV; poll the export until it is ready.
    response_status = 202

    class Input(StrictInput):
        """Nothing to choose yet: the body is empty or `{}`."""

    Output = ExportSummary

    def post(self, request: Request, project_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        parse_body(self.Input, request)
        export = export_request(actor=actor, project=project)
        return Response(
            self.Output(export, context={"request": request}).data, status=self.response_status
        )


class ExportDetailApi(TenantApi):
    Output = ExportSummary

    def get(self, request: Request, project_id: int, export_id: int) -> Response:
        actor = _actor(request)
        project = project_get(actor=actor, project_id=project_id)
        export = export_get(actor=actor, project=project, export_id=export_id)
        return Response(self.Output(export, context={"request": request}).data)
