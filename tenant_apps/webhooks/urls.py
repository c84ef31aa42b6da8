from django.urls import path

from tenant_apps.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.EndpointListView.as_view(), name="list"),
    path("new/", views.EndpointCreateView.as_view(), name="create"),
    path("<int:endpoint_id>/", views.EndpointDetailView.as_view(), name="detail"),
    path("<int:endpoint_id>/disable/", views.EndpointDisableView.as_view(), name="disable"),
    path("<int:endpoint_id>/enable/", views.EndpointEnableView.as_view(), name="enable"),
    path("<int:endpoint_id>/rotate/", views.EndpointRotateView.as_view(), name="rotate"),
    path("<int:endpoint_id>/delete/", views.EndpointDeleteView.as_view(), name="delete"),
    path(
        "deliveries/<int:delivery_id>/resend/",
        views.DeliveryResendView.as_view(),
        name="delivery-resend",
    ),
]
