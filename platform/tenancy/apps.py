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

        from django.db.backends.signals import connection_created

        from core.health import readiness_check_register
        from core.metrics import celery_signals_connect, collector_register
        from tenancy.db.pooler import pooler_readiness_check, refuse_unsafe_pooler
        from tenancy.lanes import lane_signals_connect, task_lane_metrics
        from tenancy.metrics import worker_signals_connect

        # Refuse a transaction-mode pooler on the first connection (tenancy.db.pooler).
        connection_created.connect(refuse_unsafe_pooler, dispatch_uid="tenancy-pooler")
        readiness_check_register("pooler", pooler_readiness_check)
        celery_signals_connect()
        worker_signals_connect()
        lane_signals_connect()
        collector_register("task_lanes", task_lane_metrics)
