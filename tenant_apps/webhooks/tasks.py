"""Background work of webhooks; each task runs inside the workspace that queued it."""

from __future__ import annotations

from celery import shared_task

from tenant_apps.webhooks import services


@shared_task(name="webhooks.deliver")
def webhook_deliver_task(*, delivery_id: int, attempt: int) -> None:
    """Make one attempt of a delivery; the next one, if needed, is queued with a countdown.

    Safe to run twice: the attempt is claimed before anything is sent.
    """
    services.delivery_attempt(delivery_id=delivery_id, attempt=attempt)


@shared_task(name="webhooks.deliveries_maintain")
def webhook_deliveries_maintain_task() -> None:
    """Queue deliveries whose message was lost and forget old ones (beat, every tenant)."""
    services.deliveries_maintain()
