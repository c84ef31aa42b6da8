from django.apps import AppConfig


class FleetConfig(AppConfig):
    """Operations on the whole tenant fleet; its tables stay in the tenants app."""

    name = "shared_apps.fleet"
    label = "fleet"
    verbose_name = "Fleet operations"

    def ready(self) -> None:
        from core.health import readiness_check_register, version_part_register
        from core.metrics import collector_register
        from shared_apps.fleet import probes

        # Not required: during a rolling deploy the old release's pods see the new
        # template, and a stale one only slows signups (they migrate instead).
        readiness_check_register(
            "template", probes.template_readiness_check, uses_orm=True, required=False
        )
        version_part_register("tenant_migrations", probes.tenant_migrations_version)
        collector_register("fleet", probes.fleet_metrics)
