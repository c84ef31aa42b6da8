from django.apps import AppConfig


class FleetConfig(AppConfig):
    """Operations on the whole tenant fleet; its tables stay in the tenants app."""

    name = "shared_apps.fleet"
    label = "fleet"
    verbose_name = "Fleet operations"
