"""Cache keys namespaced by tenant: apps write `cache.get("dashboard")`, never a prefix."""

from __future__ import annotations

from tenancy.context import active_schema


def tenant_key(key: str, key_prefix: str, version: int | str) -> str:
    """Build `<prefix>:<schema>:<version>:<key>` for the active tenant or public."""
    scope = active_schema() or "public"
    return f"{key_prefix}:{scope}:{version}:{key}"
