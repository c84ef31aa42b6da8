from django.urls import path

from shared_apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("reset/", views.PasswordResetRequestView.as_view(), name="password-reset"),
    path("reset/done/", views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path(
        "reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
]
