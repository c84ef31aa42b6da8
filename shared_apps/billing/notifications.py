"""The e-mails billing writes to a workspace's owners, one per dunning step.

The texts are templates in billing/templates/billing/mail/, named for the step
(dunning.Step's values); they go out through the platform's mail service after commit.
"""

from __future__ import annotations

import logging
from typing import Any

from shared_apps.accounts.models import User
from shared_apps.billing.models import BillingAccount
from shared_apps.mail.services import mail_send
from shared_apps.tenants.addresses import workspace_url
from tenancy import TenantSchemaMissingError, tenant_context

logger = logging.getLogger(__name__)


def _context(account: BillingAccount) -> dict[str, Any]:
    tenant = account.tenant
    return {
        "workspace": tenant.name,
        # Sent by the worker, with no request: the address comes from the settings.
        "billing_url": workspace_url(tenant.subdomain, "/billing/"),
        "deadline": account.grace_ends_at.strftime("%Y-%m-%d") if account.grace_ends_at else "",
        "plan": account.plan.name,
    }


def billing_owners_notify(*, account: BillingAccount, step: str) -> None:
    """E-mail the workspace's owners about a billing step once it has committed."""
    try:
        with tenant_context(account.tenant):
            owners = list(
                User.objects.filter(role=User.Role.OWNER, is_active=True).values_list(
                    "email", flat=True
                )
            )
    except TenantSchemaMissingError:
        # An archived workspace has no schema, hence no owners to write to; the billing
        # step itself still applies.
        logger.warning(
            "billing e-mail skipped: no workspace schema",
            extra={"tenant_id": str(account.tenant_id), "step": step},
        )
        return
    mail_send(to=owners, template=f"billing/mail/{step}", context=_context(account))
