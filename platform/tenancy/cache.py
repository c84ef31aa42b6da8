"""Cache keys namespaced by tenant: apps write `cache.get("dashboard")`, never a prefix.

A key is `<prefix>:<schema>.<generation>:<version>:<key>`. Invalidating a tenant's whole
namespace increments its generation in Redis (one INCR): every old key stops matching at
once and expires by its TTL, with no scan and no effect on other tenants. `cache.clear()`
would be FLUSHDB, for every tenant at once: use `tenant_cache_invalidate` instead.
"""

from __future__ import annotations

import threading
import time

from django.core.cache import caches

from tenancy.context import active_schema

GENERATION_KEY = "tenancy:cache-generation:{schema}"
# How long a process trusts the generation it read; invalidation elsewhere lands this late.
GENERATION_TTL_SECONDS = 1.0


class _Generations:
    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def current(self, schema: str) -> int:
        now = time.monotonic()
        seen = self._seen.get(schema)
        if seen is not None and now - seen[1] < GENERATION_TTL_SECONDS:
            return seen[0]
        generation = int(caches["platform"].get(GENERATION_KEY.format(schema=schema)) or 0)
        with self._lock:
            self._seen[schema] = (generation, now)
        return generation

    def bump(self, schema: str) -> int:
        key = GENERATION_KEY.format(schema=schema)
        platform_cache = caches["platform"]
        platform_cache.add(key, 0, timeout=None)
        generation = int(platform_cache.incr(key))
        with self._lock:
            self._seen[schema] = (generation, time.monotonic())
        return generation


GENERATIONS = _Generations()


def tenant_key(key: str, key_prefix: str, version: int | str) -> str:
    """Build the key of `key` in the active tenant's namespace (or public's)."""
    scope = active_schema() or "public"
    return f"{key_prefix}:{scope}.{GENERATIONS.current(scope)}:{version}:{key}"


def tenant_cache_invalidate(schema_name: str) -> None:
    """Drop every cache entry of one tenant in O(1), leaving every other tenant's intact."""
    GENERATIONS.bump(schema_name)


def tenant_cache_purge(schema_name: str) -> int:
    """Delete a removed tenant's cache entries for good (a scan: for deletions, not requests).

    Invalidates first, so nothing reads the entries while they are being deleted.
    """
    from django_redis import get_redis_connection  # type: ignore[import-untyped]

    tenant_cache_invalidate(schema_name)
    client = get_redis_connection("default")
    prefix = caches["default"].key_prefix
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:{schema_name}.*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            deleted += int(client.delete(*batch))
            batch = []
    if batch:
        deleted += int(client.delete(*batch))
    client.delete(caches["platform"].make_key(GENERATION_KEY.format(schema=schema_name)))
    return deleted
