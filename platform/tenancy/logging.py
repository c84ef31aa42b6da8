"""Log records carry the active tenant (its subdomain, or "public")."""

from __future__ import annotations

import logging

from tenancy.context import current_tenant, is_public_active


class TenantLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        tenant = current_tenant()
        if tenant is not None:
            record.tenant = tenant.subdomain
        else:
            record.tenant = "public" if is_public_active() else None
        return True
