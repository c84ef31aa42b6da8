"""URLs of the root host: the public site, signup, platform staff sign-in and admin."""

from django.conf import settings
from django.urls import include, path
from two_factor.urls import urlpatterns as two_factor_urls

from core.admin_sites import platform_admin_site
from core.health import health
from core.views import api_not_found, errors_catalogue
from shared_apps.accounts.sign_in import LoginView
from shared_apps.billing.api.views import StripeWebhookApi
from shared_apps.signup.api.views import SignupApi
from shared_apps.signup.views import LandingView, SignupView

urlpatterns = [
    path("", LandingView.as_view(), name="landing"),
    path("signup/", SignupView.as_view(), name="signup"),
    path("api/v1/signup", SignupApi.as_view(), name="api-signup"),
    path("billing/stripe/webhook/", StripeWebhookApi.as_view(), name="stripe-webhook"),
    path("login/", LoginView.as_view(), name="login"),
    path("password/", include("shared_apps.accounts.urls")),
    path("", include("shared_apps.accounts.device_urls")),  # before: same paths, gated
    path("", include(two_factor_urls)),
    path(settings.ADMIN_URL, platform_admin_site.urls),
    path("health/", health, name="health"),  # answered by core.health.ProbeMiddleware first
    path("errors/", errors_catalogue, name="errors"),
    # Last: an unknown API path answers problem+json, not the HTML 404 page.
    path("api/<path:rest>", api_not_found),
]

handler403 = "core.views.permission_denied"
