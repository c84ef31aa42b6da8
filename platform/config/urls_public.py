"""URLs of the root host: the public site and platform endpoints."""

from django.urls import path

from core.views import health
from shared_apps.tenants.api.views import SignupApi
from shared_apps.tenants.views import LandingView, SignupView

urlpatterns = [
    path("", LandingView.as_view(), name="landing"),
    path("signup/", SignupView.as_view(), name="signup"),
    path("api/v1/signup", SignupApi.as_view(), name="api-signup"),
    path("health/", health, name="health"),
]
