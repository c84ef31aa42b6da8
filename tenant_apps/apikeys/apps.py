from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "tenant_apps.apikeys"
    label = "apikeys"
    verbose_name = "API keys"
