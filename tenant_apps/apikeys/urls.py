from django.urls import path

from tenant_apps.apikeys import views

app_name = "apikeys"

urlpatterns = [
    path("", views.ApiKeyListView.as_view(), name="list"),
    path("new/", views.ApiKeyCreateView.as_view(), name="create"),
    path("<int:key_id>/revoke/", views.ApiKeyRevokeView.as_view(), name="revoke"),
]
