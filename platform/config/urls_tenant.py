"""URLs of a tenant's host (`<subdomain>.<ROOT_DOMAIN>`)."""

from django.urls import include, path

from core.views import health
from tenancy.views import files_serve

urlpatterns = [
    path("", include("tenant_apps.workspace.urls")),
    path("projects/", include("tenant_apps.projects.urls")),
    path("files/<str:token>/", files_serve, name="files-serve"),
    path("health/", health, name="health"),
]
