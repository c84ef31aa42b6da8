from django.urls import path

from core.api.views import operations
from tenant_apps.projects.api import views

urlpatterns = [
    path(
        "projects",
        operations(views.ProjectListApi, views.ProjectCreateApi),
        name="api-projects",
    ),
    path(
        "projects/<int:project_id>",
        operations(views.ProjectDetailApi, views.ProjectUpdateApi),
        name="api-project",
    ),
    path(
        "projects/<int:project_id>/tasks",
        operations(views.TaskListApi, views.TaskCreateApi),
        name="api-project-tasks",
    ),
    path(
        "projects/<int:project_id>/tasks/<int:task_id>",
        operations(views.TaskUpdateApi),
        name="api-project-task",
    ),
    path(
        "projects/<int:project_id>/attachments",
        operations(views.AttachmentListApi, views.AttachmentUploadApi),
        name="api-project-attachments",
    ),
    path(
        "projects/<int:project_id>/attachments/<int:attachment_id>",
        operations(views.AttachmentDetailApi),
        name="api-project-attachment",
    ),
    path(
        "projects/<int:project_id>/exports",
        operations(views.ExportListApi, views.ExportRequestApi),
        name="api-project-exports",
    ),
    path(
        "projects/<int:project_id>/exports/<int:export_id>",
        operations(views.ExportDetailApi),
        name="api-project-export",
    ),
]
