"""Expired sessions are cleared in every schema: each workspace keeps its own sessions."""

from __future__ import annotations

import logging
from importlib import import_module

from celery import shared_task
from django.conf import settings

from tenancy.tasks import PlatformTask

logger = logging.getLogger(__name__)


def sessions_clear_expired() -> None:
    """Delete the active schema's expired sessions (what `clearsessions` does)."""
    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()


@shared_task(name="accounts.sessions_clear")
def sessions_clear_task() -> None:
    """Clear one workspace's expired sessions (queued per tenant by the beat fan-out)."""
    sessions_clear_expired()
    logger.info("expired sessions cleared")


@shared_task(base=PlatformTask, name="accounts.sessions_clear_public")
def sessions_clear_public_task() -> None:
    """Clear the platform staff's expired sessions, in the public schema."""
    sessions_clear_expired()
    logger.info("expired sessions cleared")
