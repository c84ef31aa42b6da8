from django.apps import AppConfig


class FleetProbeConfig(AppConfig):
    """A tenant app for fleet migration tests: its migrations module is swapped per test."""

    name = "tests.fleet_app"
    label = "fleet_probe"
    default_auto_field = "django.db.models.BigAutoField"
