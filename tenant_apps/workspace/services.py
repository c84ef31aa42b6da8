"""Changing the workspace's own settings."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import transaction

from shared_apps.accounts.models import User
from shared_apps.audit.services import audited
from tenancy import require_tenant
from tenant_apps.members import policy
from tenant_apps.workspace.models import WorkspaceSettings
from tenant_apps.workspace.selectors import TWO_FACTOR_REQUIRED_CACHE_KEY

logger = logging.getLogger(__name__)


def workspace_two_factor_require(*, actor: User, required: bool) -> WorkspaceSettings:
    """Require (or stop requiring) a verified second factor of everyone signed in here.

    Audited. People without a device are sent to enrol at their next page; sessions that
    signed in with the password alone sign in again with their code.

    Raises:
        PermissionDenied: only owners change the workspace's settings.
    """
    policy.require(actor, "workspace.settings")
    with audited(
        "workspace.two_factor_required",
        actor=f"user:{actor.email}",
        tenant=require_tenant(),
        required=required,
    ):
        settings, _ = WorkspaceSettings.objects.select_for_update().get_or_create(singleton=True)
        if settings.is_two_factor_required != required:
            settings.is_two_factor_required = required
            settings.save(update_fields=["is_two_factor_required", "updated_at"])
        # Now for this process, and again after commit: a request between the two may have
        # cached the old value.
        cache.delete(TWO_FACTOR_REQUIRED_CACHE_KEY)
        transaction.on_commit(lambda: cache.delete(TWO_FACTOR_REQUIRED_CACHE_KEY))
    logger.info("workspace two-factor requirement changed", extra={"required": required})
    return settings
