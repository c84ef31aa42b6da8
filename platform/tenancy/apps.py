from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from tenancy.contenttypes import install_schema_keyed_cache

        install_schema_keyed_cache()

        from celery.signals import task_postrun
        from django.core.signals import request_finished

        from tenancy.db import recycle_swollen_connections

        request_finished.connect(recycle_swollen_connections, dispatch_uid="tenancy-recycle")
        task_postrun.connect(recycle_swollen_connections, dispatch_uid="tenancy-recycle")
