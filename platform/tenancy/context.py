"""The active tenant, kept in a ContextVar so it is right under ASGI, threads and tasks.

The database backend (`tenancy.db`) follows this variable: the connection's search_path
is derived from it when a cursor is opened, so the connection is never the source of truth.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from tenancy.errors import NoActiveTenantError

PUBLIC_SCHEMA = "public"
# The platform derives every tenant schema name from this pattern (see tenancy.schemas);
# django-tenants pastes names into SQL, so nothing else may ever reach it.
TENANT_SCHEMA_PATTERN = re.compile(r"^t_[0-9a-f]{32}\Z")
# The quarantine cause of a tenant whose release failed to migrate it (tenants.models):
# served as "maintenance" rather than "unavailable".
MAINTENANCE_CAUSE = "migration_failed"


class TenantLike(Protocol):
    @property
    def pk(self) -> UUID: ...  # pragma: no cover

    schema_name: str
    subdomain: str
    name: str
    status: str


@dataclass(frozen=True, slots=True)
class TenantRef:
    """What the platform carries around about the active tenant: immutable and cheap."""

    id: UUID
    schema_name: str
    subdomain: str
    name: str
    status: str
    # The schema cannot serve the code (`tenants verify`, or a failed `tenants migrate`):
    # not routed, no tasks.
    is_quarantined: bool = False
    quarantine_cause: str = ""
    # Suspended by billing: its owners may still sign in to the billing page to pay.
    is_suspended_for_non_payment: bool = False

    def __post_init__(self) -> None:
        if not TENANT_SCHEMA_PATTERN.match(self.schema_name):
            raise ValueError(f"not a platform tenant schema name: {self.schema_name!r}")

    @property
    def is_in_maintenance(self) -> bool:
        """Quarantined because the release's migrations failed on it (not schema drift)."""
        return self.is_quarantined and self.quarantine_cause == MAINTENANCE_CAUSE

    @classmethod
    def of(cls, tenant: TenantRef | TenantLike) -> TenantRef:
        if isinstance(tenant, TenantRef):
            return tenant
        quarantined = getattr(tenant, "quarantined_at", None) is not None
        return cls(
            id=tenant.pk,
            schema_name=tenant.schema_name,
            subdomain=tenant.subdomain,
            name=tenant.name,
            status=tenant.status,
            is_quarantined=quarantined,
            quarantine_cause=getattr(tenant, "quarantine_cause", "") if quarantined else "",
            is_suspended_for_non_payment=bool(
                getattr(tenant, "is_suspended_for_non_payment", False)
            ),
        )


@dataclass(frozen=True, slots=True)
class _Schema:
    """A schema entered on purpose that is no tenant: public, or the provisioning template."""

    schema_name: str = PUBLIC_SCHEMA

    @property
    def is_public(self) -> bool:
        return self.schema_name == PUBLIC_SCHEMA


PUBLIC = _Schema()

_active: ContextVar[TenantRef | _Schema | None] = ContextVar("active_tenant", default=None)


def current_tenant() -> TenantRef | None:
    """Return the active tenant, or None on the public schema or outside any context."""
    active = _active.get()
    return active if isinstance(active, TenantRef) else None


def require_tenant() -> TenantRef:
    """Return the active tenant.

    Raises:
        NoActiveTenantError: no tenant is active (public, or nothing entered).
    """
    active = _active.get()
    if not isinstance(active, TenantRef):
        raise NoActiveTenantError("this code needs an active tenant and none is active")
    return active


def active_schema() -> str | None:
    """Return the schema the context asks for, or None when nothing was entered."""
    active = _active.get()
    return None if active is None else active.schema_name


def is_public_active() -> bool:
    active = _active.get()
    return isinstance(active, _Schema) and active.is_public


class _Entered:
    """Enter a tenant (or a non-tenant schema) for a block; leave it afterwards, even on error.

    The connection is pointed at the schema at once (the SQL follows at the next cursor):
    the backend also follows the ContextVar when a cursor opens, and aligning eagerly keeps
    `connection.schema_name` truthful for code that reads it before any query.

    A class rather than a generator: every request enters and leaves once, so it is kept cheap.
    """

    __slots__ = ("_connection", "_previous_schema", "_token", "_value")

    def __init__(self, value: TenantRef | _Schema) -> None:
        self._value = value

    def __enter__(self) -> Any:
        from django.db import DEFAULT_DB_ALIAS, connections

        connection: Any = connections[DEFAULT_DB_ALIAS]  # tenancy.db's wrapper
        self._connection = connection
        self._previous_schema = connection.schema_name
        self._token = _active.set(self._value)
        if connection.schema_name != self._value.schema_name:
            connection.set_schema(self._value.schema_name)
        return self._value if isinstance(self._value, TenantRef) else None

    def __exit__(self, *exc_info: object) -> None:
        _active.reset(self._token)
        # Only Python state moves here; the backend skips the SQL when the server
        # already has the path, so the next request for the same tenant costs nothing.
        if self._connection.schema_name != self._previous_schema:
            self._connection.set_schema(self._previous_schema)


def tenant_context(tenant: TenantRef | TenantLike) -> AbstractContextManager[TenantRef]:
    """Run the block inside one tenant: its schema, cache namespace and log fields."""
    return _Entered(TenantRef.of(tenant))


def public_context() -> AbstractContextManager[None]:
    """Run the block on the public schema, explicitly (platform-wide work)."""
    return _Entered(PUBLIC)


def template_context(schema_name: str) -> AbstractContextManager[None]:
    """Run the block in the provisioning template schema (tenancy internals only)."""
    from tenancy.schemas import TEMPLATE_SCHEMA

    if schema_name != TEMPLATE_SCHEMA:
        raise ValueError(f"not the template schema: {schema_name!r}")
    return _Entered(_Schema(schema_name))
