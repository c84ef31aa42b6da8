from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    name = "tenant_apps.idempotency"
    label = "idempotency"
    verbose_name = "Idempotency keys"
