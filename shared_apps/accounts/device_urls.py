"""Adding second factors. Included before django-two-factor-auth's URLs (same paths, so these
win, and `reverse("two_factor:setup")` and the rest still name them); the gate is new."""

from django.urls import path

from shared_apps.accounts import device_views

app_name = "devices"

urlpatterns = [
    path("account/two_factor/setup/", device_views.DeviceSetupView.as_view(), name="setup"),
    path(
        "account/two_factor/setup/confirm/",
        device_views.DeviceConfirmView.as_view(),
        name="confirm",
    ),
    path(
        "account/two_factor/setup/complete/",
        device_views.DeviceSetupCompleteView.as_view(),
        name="setup_complete",
    ),
    path(
        "account/two_factor/backup/tokens/",
        device_views.BackupCodesView.as_view(),
        name="backup_codes",
    ),
]
