from django.urls import path

from tenant_apps.workspace import views

app_name = "workspace"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("auth/handoff/", views.HandoffView.as_view(), name="handoff"),
]
