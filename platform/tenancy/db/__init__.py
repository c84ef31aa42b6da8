"""Database backend: django-tenants' PostgreSQL wrapper, following tenancy's ContextVar."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from tenancy.db.base import DatabaseWrapper


def tenant_connection() -> DatabaseWrapper:
    """Return this thread's default connection, typed as the tenant-aware wrapper."""
    from django.db import connection

    return cast("DatabaseWrapper", connection)
