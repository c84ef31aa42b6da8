from django.urls import path
from django.views.generic import TemplateView

from tenant_apps.workspace import views

app_name = "workspace"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("auth/handoff/", views.HandoffView.as_view(), name="handoff"),
    path("security/", views.SecurityView.as_view(), name="security"),
    path("security/two-factor/", views.TwoFactorRequireView.as_view(), name="two_factor_require"),
    path(
        "robots.txt",
        TemplateView.as_view(template_name="workspace/robots.txt", content_type="text/plain"),
        name="robots",
    ),
]
