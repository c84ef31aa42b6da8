"""Content types cached per schema, not per process.

Django caches ContentType rows in a process-wide dict keyed by database alias. Each tenant
schema has its own django_content_type table whose ids may differ, so a row cached while
serving one tenant would be wrong for another (permissions, generic relations, admin log).
django-tenants clears the whole cache at every switch, which still races between threads.
Keying the cache by schema makes every tenant resolve its own rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType

from tenancy.context import PUBLIC_SCHEMA, active_schema


def _schema() -> str:
    from tenancy.db import tenant_connection

    return str(active_schema() or getattr(tenant_connection(), "schema_name", PUBLIC_SCHEMA))


class SchemaKeyedCache(dict[Any, Any]):
    """The manager's `_cache[alias]` becomes `_cache[(alias, active schema)]`."""

    def __getitem__(self, alias: str) -> Any:
        return super().__getitem__((alias, _schema()))

    def __contains__(self, alias: object) -> bool:
        return super().__contains__((alias, _schema()))

    def get(self, alias: str, default: Any = None) -> Any:
        return super().get((alias, _schema()), default)

    def setdefault(self, alias: str, default: Any = None) -> Any:
        return super().setdefault((alias, _schema()), default)


def install_schema_keyed_cache() -> None:
    manager: Any = ContentType.objects
    if not isinstance(manager._cache, SchemaKeyedCache):
        manager._cache = SchemaKeyedCache()
