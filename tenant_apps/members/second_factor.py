"""Another person's second factor: an owner can take it away when a phone is lost."""

from __future__ import annotations

import logging

from django.db import transaction
from django_otp import devices_for_user

from shared_apps.accounts.models import User
from shared_apps.audit.services import audited
from shared_apps.mail.services import mail_send
from tenancy import require_tenant
from tenant_apps.members import policy

logger = logging.getLogger(__name__)


def member_second_factor_reset(*, actor: User, member: User) -> int:
    """Remove every second factor of `member` (they enrol again at their next sign-in).

    Audited, and the member is told by e-mail. Returns how many devices were removed.

    Raises:
        PermissionDenied: only owners may do this.
    """
    policy.require(actor, "member.reset_second_factor", member)
    workspace = require_tenant()
    with (
        audited(
            "member.second_factor_reset",
            actor=f"user:{actor.email}",
            tenant=workspace,
            member_id=member.pk,
        ) as entry,
        transaction.atomic(),
    ):
        removed = 0
        for device in devices_for_user(member, confirmed=None):
            device.delete()
            removed += 1
        entry.detail["devices_removed"] = removed
        mail_send(
            to=[member.email],
            template="members/mail/second_factor_reset",
            context={"workspace": workspace.name, "owner": actor.email},
        )
    logger.info("second factor reset", extra={"member_id": member.pk, "devices": removed})
    return removed
