from django.urls import path

from tenant_apps.projects import views

app_name = "projects"

urlpatterns = [
    path("", views.ProjectListView.as_view(), name="list"),
    path("new/", views.ProjectCreateView.as_view(), name="create"),
    path("<int:project_id>/", views.ProjectDetailView.as_view(), name="detail"),
    path("<int:project_id>/edit/", views.ProjectUpdateView.as_view(), name="update"),
    path("<int:project_id>/tasks/", views.TaskCreateView.as_view(), name="task-create"),
    path(
        "<int:project_id>/tasks/<int:task_id>/", views.TaskUpdateView.as_view(), name="task-update"
    ),
    path(
        "<int:project_id>/attachments/",
        views.AttachmentUploadView.as_view(),
        name="attachment-upload",
    ),
    path(
        "<int:project_id>/attachments/<int:attachment_id>/",
        views.AttachmentDownloadView.as_view(),
        name="attachment-download",
    ),
    path("<int:project_id>/exports/", views.ExportCreateView.as_view(), name="export-create"),
    path(
        "<int:project_id>/exports/<int:export_id>/",
        views.ExportDownloadView.as_view(),
        name="export-download",
    ),
]
