"""The platform, provisioning new tenants the stock django-tenants way (benchmark only).

`Tenant.create_schema()` (what `auto_create_schema` runs on save) is CREATE SCHEMA followed
by `migrate_schemas` for the new schema; the platform's fallback path does exactly that,
so this forces it by hiding the template.
"""

import logging

from config.wsgi import application
from shared_apps.fleet import creation, provisioning

provisioning.TEMPLATE.sql = lambda: None  # type: ignore[method-assign]
creation.pool_claim = lambda: None  # no pool either
logging.getLogger("shared_apps.fleet.provisioning").setLevel(logging.ERROR)

__all__ = ["application"]
