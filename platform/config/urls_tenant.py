"""URLs of a tenant's host (`<subdomain>.<ROOT_DOMAIN>`)."""

from django.urls import include, path

from core.views import health

urlpatterns = [
    path("", include("tenant_apps.workspace.urls")),
    path("health/", health, name="health"),
]
