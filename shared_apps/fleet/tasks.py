"""Background work for the fleet: keeping ready schemas in the pool, checking schemas."""

from __future__ import annotations

from celery import shared_task

from shared_apps.fleet.provisioning import pool_fill
from shared_apps.fleet.verify import fleet_verify
from tenancy.tasks import PlatformTask


# The registered name predates the fleet app; messages queued by a running release use it.
@shared_task(base=PlatformTask, name="tenants.pool_refill")
def tenants_pool_refill_task() -> int:
    """Top the pool of ready tenant schemas back up after signups took from it."""
    return pool_fill()


@shared_task(base=PlatformTask, name="tenants.verify")
def fleet_verify_task() -> list[str]:
    """Check every tenant's schema between releases: quarantine the broken, release the
    repaired; return the subdomains left quarantined."""
    return fleet_verify(actor="beat:tenants.verify").still_quarantined
