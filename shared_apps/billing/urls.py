from django.urls import path

from shared_apps.billing import views

app_name = "billing"

urlpatterns = [
    path("", views.BillingView.as_view(), name="page"),
    path("checkout/", views.BillingCheckoutView.as_view(), name="checkout"),
    path("portal/", views.BillingPortalView.as_view(), name="portal"),
]
