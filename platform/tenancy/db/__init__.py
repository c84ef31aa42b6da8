"""Database backend: django-tenants' PostgreSQL wrapper, following tenancy's ContextVar."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from tenancy.db.base import DatabaseWrapper


def tenant_connection() -> DatabaseWrapper:
    """Return this thread's default connection, typed as the tenant-aware wrapper."""
    from django.db import connection

    return cast("DatabaseWrapper", connection)


def recycle_swollen_connections(**_signal_kwargs: object) -> None:
    """After a request or task: close connections that served too many tenants."""
    from django.db import connections

    for wrapper in connections.all(initialized_only=True):
        recycle = getattr(wrapper, "recycle_if_swollen", None)
        if recycle is not None:
            recycle()
