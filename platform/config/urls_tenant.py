"""URLs of a tenant's host (`<subdomain>.<ROOT_DOMAIN>`)."""

from django.urls import include, path
from two_factor.urls import urlpatterns as two_factor_urls

from core.api.reference import ApiDocsView, ApiSchemaView
from core.api.views import ApiNotFoundView
from core.health import health
from core.views import errors_catalogue
from tenancy.views import files_serve
from tenant_apps.members.admin_site import tenant_admin_site
from tenant_apps.members.views import InvitationAcceptView

urlpatterns = [
    path("", include("tenant_apps.workspace.urls")),
    path("", include("shared_apps.accounts.device_urls")),  # before: same paths, gated
    path("", include(two_factor_urls)),
    path("password/", include("shared_apps.accounts.urls")),
    path("admin/", tenant_admin_site.urls),
    path("projects/", include("tenant_apps.projects.urls")),
    path("members/", include("tenant_apps.members.urls")),
    path("settings/api-keys/", include("tenant_apps.apikeys.urls")),
    path("settings/webhooks/", include("tenant_apps.webhooks.urls")),
    path("billing/", include("shared_apps.billing.urls")),
    path("api/v1/schema/", ApiSchemaView.as_view(), name="api-schema"),
    path("api/v1/docs/", ApiDocsView.as_view(), name="api-docs"),
    path("api/v1/", include("tenant_apps.projects.api.urls")),
    path("api/v1/", include("tenant_apps.members.api.urls")),
    path("invitations/accept/", InvitationAcceptView.as_view(), name="invitation-accept"),
    path("files/<str:token>/", files_serve, name="files-serve"),
    path("health/", health, name="health"),  # answered by core.health.ProbeMiddleware first
    path("errors/", errors_catalogue, name="errors"),
    # Last: an unknown API path answers problem+json, not the HTML 404 page.
    path("api/<path:rest>", ApiNotFoundView.as_view()),
]

handler403 = "tenant_apps.workspace.views.permission_denied"
handler500 = "tenancy.views.server_error"
