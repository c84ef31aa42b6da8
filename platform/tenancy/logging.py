"""Log records carry the active tenant (its subdomain, or "public")."""

from __future__ import annotations

import logging

from core.logging import current_task_header
from tenancy.context import current_tenant, is_public_active

# The header tenancy.tasks adds to every message: the tenant's subdomain, for log lines.
TENANT_NAME_HEADER = "tenant"


class TenantLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        tenant = current_tenant()
        if tenant is not None:
            record.tenant = tenant.subdomain
        elif is_public_active():
            record.tenant = "public"
        else:  # Celery's own lines around a task body name the task's tenant
            record.tenant = current_task_header(TENANT_NAME_HEADER)
        return True
