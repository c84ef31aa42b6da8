"""Periodic work for every active tenant: one dispatcher, one message per tenant."""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app, shared_task

from shared_apps.tenants.models import Tenant
from tenancy.context import tenant_context
from tenancy.tasks import PlatformTask

logger = logging.getLogger(__name__)


@shared_task(base=PlatformTask, name="tenants.fan_out")
def tenants_fan_out_task(*, task_name: str, kwargs: dict[str, Any] | None = None) -> int:
    """Queue `task_name` once in every active tenant; return how many were queued."""
    task = current_app.tasks[task_name]
    count = 0
    for tenant in Tenant.objects.active().only("id", "schema_name", "subdomain", "name", "status"):
        with tenant_context(tenant):
            task.apply_async(kwargs=kwargs or {})
        count += 1
    logger.info("fanned out", extra={"task": task_name, "tenants": count})
    return count
