"""Idempotency records older than a day are cleared in every workspace's schema."""

from __future__ import annotations

import logging

from celery import shared_task

from tenant_apps.idempotency.services import idempotency_records_clear

logger = logging.getLogger(__name__)


@shared_task(name="idempotency.records_clear")
def idempotency_records_clear_task() -> None:
    """Clear one workspace's expired idempotency records (queued per tenant by the fan-out)."""
    deleted = idempotency_records_clear()
    logger.info("idempotency records cleared", extra={"deleted": deleted})
