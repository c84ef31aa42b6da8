from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "tenant_apps.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # The events layer sits below members and cannot import this app: listen from here.
        from tenant_apps.events.services import event_listener_register
        from tenant_apps.webhooks.services import deliveries_record

        event_listener_register(deliveries_record)
