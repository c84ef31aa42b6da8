from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "shared_apps.billing"
    label = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Imported here: the guard reads models, which exist only once apps are loaded.
        from shared_apps.billing.guards import billing_deletion_guard
        from shared_apps.billing.limits import plan_task_concurrency
        from shared_apps.tenants.guards import deletion_guard_register
        from tenancy.lanes import tenant_concurrency_register

        deletion_guard_register(billing_deletion_guard)
        # Each workspace's share of the workers is its plan's (tenancy.lanes).
        tenant_concurrency_register(plan_task_concurrency)
