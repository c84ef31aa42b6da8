from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from tenancy.contenttypes import install_schema_keyed_cache

        install_schema_keyed_cache()
