"""URLs of the root host: the public site and platform endpoints."""

from django.urls import path

from core.views import health
from shared_apps.tenants.views import LandingView

urlpatterns = [
    path("", LandingView.as_view(), name="landing"),
    path("health/", health, name="health"),
]
