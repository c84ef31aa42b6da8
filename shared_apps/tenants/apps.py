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


def _routes_changed(**kwargs: object) -> None:
    from tenancy.host_routes import routes_changed

    routes_changed()
