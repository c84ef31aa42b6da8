from typing import Any

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "shared_apps.tenants"
    label = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from shared_apps.tenants.models import Domain, Tenant

        # Any write to a tenant or domain (services, admin, shell) invalidates host routing.
        for model in (Tenant, Domain):
            post_save.connect(
                _routes_changed, sender=model, dispatch_uid=f"routes-{model.__name__}"
            )
            post_delete.connect(
                _routes_changed, sender=model, dispatch_uid=f"routes-del-{model.__name__}"
            )
        # A workspace no longer served (suspended, archived, quarantined, deleted) loses its
        # queued tasks, whichever door changed it; its workers would skip them anyway.
        post_save.connect(_tasks_maybe_drop, sender=Tenant, dispatch_uid="tasks-drop")
        post_delete.connect(_tasks_drop, sender=Tenant, dispatch_uid="tasks-drop-del")


def _routes_changed(**kwargs: object) -> None:
    from tenancy.host_routes import routes_changed

    routes_changed()


def _tasks_maybe_drop(instance: Any, **kwargs: object) -> None:
    from shared_apps.tenants.models import Tenant

    if instance.status in (Tenant.Status.SUSPENDED, Tenant.Status.ARCHIVED) or (
        instance.quarantined_at is not None
    ):
        _tasks_drop(instance)


def _tasks_drop(instance: Any, **kwargs: object) -> None:
    from django.db import transaction

    from tenancy.lanes import tenant_tasks_drop

    tenant_id = instance.pk
    transaction.on_commit(lambda: tenant_tasks_drop(tenant_id))
