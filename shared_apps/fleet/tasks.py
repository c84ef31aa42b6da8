"""Background work for the fleet: keeping ready schemas in the pool."""

from __future__ import annotations

from celery import shared_task

from shared_apps.fleet.provisioning import pool_fill
from tenancy.tasks import PlatformTask


# The registered name predates the fleet app; messages queued by a running release use it.
@shared_task(base=PlatformTask, name="tenants.pool_refill")
def tenants_pool_refill_task() -> int:
    """Top the pool of ready tenant schemas back up after signups took from it."""
    return pool_fill()
