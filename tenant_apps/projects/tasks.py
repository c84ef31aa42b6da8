"""Background work of the projects app; each task runs inside the tenant that queued it."""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task

from tenant_apps.projects import services
from tenant_apps.projects.models import Export
from tenant_apps.projects.selectors import DASHBOARD_KEY, DASHBOARD_TTL, dashboard_compute

logger = logging.getLogger(__name__)


@shared_task(
    name="projects.export_build",
    autoretry_for=(OSError, BotoCoreError, ClientError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=6,
)
def export_build_task(*, export_id: int) -> None:
    """Build the CSV for one export request; safe to run twice."""
    export = Export.objects.select_related("project").filter(pk=export_id).first()
    if export is None or export.status == Export.Status.DONE:
        return  # gone, or a redelivered message whose file already exists
    try:
        services.export_build(export=export)
    except (OSError, BotoCoreError, ClientError):
        raise  # storage hiccup: retried with backoff
    except Exception as error:
        services.export_fail(export_id=export_id, error=str(error))
        logger.exception("export failed", extra={"export_id": export_id})
        raise


@shared_task(name="projects.dashboard_refresh")
def dashboard_refresh_task() -> None:
    """Recompute the tenant's dashboard figures (beat fans this out to every tenant)."""
    from django.core.cache import cache

    cache.set(DASHBOARD_KEY, dashboard_compute(), DASHBOARD_TTL)
