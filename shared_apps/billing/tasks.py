"""Billing work on the public schema: webhook events and the dunning clock.

Each task is its service's name plus `_task`; the registered names (`billing.*`) are what beat
and queued messages refer to, so they stay as documented.
"""

from __future__ import annotations

from celery import shared_task

from shared_apps.billing.dunning import billing_grace_expire
from shared_apps.billing.errors import StripeUnavailableError
from shared_apps.billing.webhooks import stripe_event_process, stripe_events_retry
from tenancy.tasks import PlatformTask


@shared_task(
    base=PlatformTask,
    name="billing.event_process",
    acks_late=True,
    autoretry_for=(StripeUnavailableError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=10,
)
def stripe_event_process_task(*, event_id: str) -> bool:
    """Apply one stored Stripe event; a processed event is skipped, so it is safe to repeat."""
    return stripe_event_process(event_id=event_id)


@shared_task(base=PlatformTask, name="billing.grace_expire")
def billing_grace_expire_task() -> int:
    """Suspend workspaces whose grace period after a failed payment has run out."""
    return billing_grace_expire()


@shared_task(base=PlatformTask, name="billing.events_retry")
def stripe_events_retry_task() -> int:
    """Queue again the Stripe events whose processing has not succeeded yet."""
    return stripe_events_retry()
