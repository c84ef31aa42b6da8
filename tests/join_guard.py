"""A test guard: no statement run inside a tenant reads a public table and a tenant table.

On Citus, a tenant's tables live on a worker and the public schema's on the coordinator,
so such a join would have to move rows between nodes (and across schemas it means one
tenant's request leaning on platform-wide data in one query, which the platform avoids
anyway). Every test runs with this execute wrapper on its connection: while a tenant is
active, a statement whose FROM/JOIN/UPDATE/INTO names both a shared-only table (a model of
SHARED_APPS alone, found in public) and a tenant table fails the test, naming both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection

from tenancy import current_tenant

# The table named after each of these words; Django quotes every name it writes.
_TABLE = re.compile(r'\b(?:FROM|JOIN|UPDATE|INTO)\s+(?:"?\w+"?\.)?"?(\w+)"?', re.IGNORECASE)


class CrossSchemaJoinError(AssertionError):
    """A statement inside a tenant read a public table and a tenant table together."""


@cache
def table_sets() -> tuple[frozenset[str], frozenset[str]]:
    """The tables found only in public, and the tables of every tenant schema."""

    def tables_of(names: list[str]) -> set[str]:
        found: set[str] = set()
        for name in names:
            config = apps.get_containing_app_config(name)
            if config is not None:
                found |= {
                    model._meta.db_table for model in config.get_models(include_auto_created=True)
                }
        return found

    tenant = tables_of(settings.TENANT_APPS)
    return frozenset(tables_of(settings.SHARED_APPS) - tenant), frozenset(tenant)


def statement_mixes_schemas(sql: str) -> tuple[set[str], set[str]]:
    """The shared-only and the tenant tables one statement reads, when it reads both."""
    shared_only, tenant = table_sets()
    named = set(_TABLE.findall(sql))
    public, own = named & shared_only, named & tenant
    return (public, own) if public and own else (set(), set())


@dataclass
class JoinGuard:
    violations: list[str] = field(default_factory=list)

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        tenant = current_tenant()
        if tenant is not None and isinstance(sql, str):
            public, own = statement_mixes_schemas(sql)
            if public:
                message = (
                    f"inside tenant {tenant.subdomain!r}, one statement reads public "
                    f"{sorted(public)} and tenant {sorted(own)}: {' '.join(sql.split())[:300]}"
                )
                self.violations.append(message)
                raise CrossSchemaJoinError(message)
        return execute(sql, params, many, context)


@pytest.fixture(autouse=True)
def join_guard() -> Iterator[JoinGuard]:
    """Fail the test on a statement that joins public and tenant tables inside a tenant
    (also when the code under test caught the error)."""
    guard = JoinGuard()
    with connection.execute_wrapper(guard):
        yield guard
    if guard.violations:
        pytest.fail("\n".join(guard.violations), pytrace=False)
