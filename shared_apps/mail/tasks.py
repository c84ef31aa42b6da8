from __future__ import annotations

import logging
import smtplib
from typing import Any

from celery import Task, shared_task

from core.metrics import mail_failure_count
from shared_apps.mail.services import RenderedMail, mail_deliver
from tenancy.tasks import PlatformTask

logger = logging.getLogger(__name__)


@shared_task(
    base=PlatformTask,
    bind=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
    soft_time_limit=60,
    time_limit=90,
)
def mail_deliver_task(self: Task, *, mail: dict[str, Any]) -> None:
    """Deliver one rendered e-mail; transient server failures are retried with backoff."""
    rendered = RenderedMail(**mail)
    try:
        mail_deliver(rendered)
    except (smtplib.SMTPException, OSError):
        given_up = self.request.retries >= (self.max_retries or 0)
        mail_failure_count("given_up" if given_up else "retry")
        if given_up:
            logger.error("e-mail given up", extra={"mail_kind": rendered.kind})
        raise
    logger.info("e-mail sent", extra={"mail_kind": rendered.kind})
