from django.urls import path

from tenant_apps.projects.api import views

urlpatterns = [
    path("projects", views.ProjectCreateApi.as_view(), name="api-project-create"),
]
