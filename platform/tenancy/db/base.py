"""django-tenants' backend with two changes that make it fail closed.

1. The schema follows tenancy's ContextVar when a cursor is opened, so a thread or task
   that entered a tenant cannot leave its successor on the wrong schema.
2. The search_path is set with one statement that also proves the schema exists:
   PostgreSQL silently skips a missing schema in search_path, which would let a tenant
   whose schema is gone read the public tables of the same name.

The wrapper remembers the path the server session actually has (set outside a
transaction, so no rollback can undo it): returning to that path costs no statement, so
a persistent connection serving the same tenant again costs nothing, except that the
existence proof is renewed every TENANT_SCHEMA_RECHECK_SECONDS (a schema dropped by
hand is refused within that window). A pooled connection
is new to the wrapper at each checkout and sets its path once per request, which also
re-proves that the schema exists.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import psycopg
from django.conf import settings
from django_tenants.postgresql_backend import base as tenants_base

from tenancy.context import PUBLIC_SCHEMA, active_schema
from tenancy.db.introspection import SchemaIntrospection
from tenancy.errors import TenantSchemaMissingError

SET_PATH_SQL = (
    "SELECT pg_catalog.set_config('search_path', %s, false) "
    "FROM pg_catalog.pg_namespace WHERE nspname = %s"
)


# Schemas each server session has had on its path, kept with the psycopg connection so a
# pooled session is counted across checkouts.
_SCHEMAS_SERVED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    schema_name: str
    search_path_set_schemas: list[str] | None
    _setting_search_path: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._server_search_path: str | None = None
        self._server_search_path_proved_at = 0.0
        super().__init__(*args, **kwargs)
        self.introspection = SchemaIntrospection(self)  # django-tenants sets its own here

    def init_connection_state(self) -> None:
        self._server_search_path = None
        super().init_connection_state()

    def close(self) -> None:
        self._server_search_path = None
        super().close()

    def schemas_served(self) -> int:
        """How many tenant schemas this server session has had on its search_path."""
        return len(_SCHEMAS_SERVED.get(self.connection, ())) if self.connection else 0

    def recycle_if_swollen(self) -> bool:
        """Close the connection if it has served TENANT_CONNECTION_MAX_SCHEMAS tenants.

        PostgreSQL keeps catalog metadata for every relation a session touched (about
        20 KB per table) and never gives it back: a session that served a thousand tenants
        holds hundreds of MB (docs/benchmarks.md measures it). Called between requests and
        tasks, never inside a transaction. A pooled connection is closed too, so the pool
        replaces it.
        """
        raw = self.connection
        if raw is None or self.in_atomic_block:
            return False
        if self.schemas_served() < settings.TENANT_CONNECTION_MAX_SCHEMAS:
            return False
        raw.close()  # before Django's close: the pool then discards it instead of reusing
        self.close()
        return True

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None:
        # django-tenants also empties Django's content type cache at every switch; ours is
        # keyed by schema (tenancy.contenttypes), so a switch only moves the schema, which
        # keeps a request's enter-and-leave of its tenant nearly free.
        self.tenant = tenant
        self.schema_name = tenant.schema_name
        self.include_public_schema = include_public
        self.set_settings_schema(self.schema_name)
        self.search_path_set_schemas = None

    def _cursor(self, name: str | None = None) -> Any:
        self._follow_active_tenant()
        return super()._cursor(name)

    def _follow_active_tenant(self) -> None:
        wanted = active_schema()
        # None: nothing entered (management commands, migrations driven by django-tenants).
        if wanted is not None and wanted != self.schema_name:
            self.set_schema(wanted)

    def _handle_search_path(self, cursor: Any = None) -> None:
        if self._setting_search_path or self.search_path_set_schemas:
            return
        schemas = self._get_cursor_search_paths()  # validated by django-tenants
        path = ", ".join(f'"{schema}"' for schema in schemas)
        now = time.monotonic()
        if path == self._server_search_path and (
            now - self._server_search_path_proved_at < settings.TENANT_SCHEMA_RECHECK_SECONDS
        ):
            self.search_path_set_schemas = schemas
            return
        self._setting_search_path = True
        target = self.connection.cursor() if cursor is None else cursor
        try:
            target.execute(SET_PATH_SQL, [path, self.schema_name])
            found = target.fetchone()
        except psycopg.Error:
            # The transaction is already aborted; the caller's own statement reports it.
            self.search_path_set_schemas = None
            self._server_search_path = None
            return
        finally:
            self._setting_search_path = False
            if cursor is None:
                target.close()
        if found is None:
            self._server_search_path = None
            raise TenantSchemaMissingError(self.schema_name)
        self.search_path_set_schemas = schemas
        if self.schema_name != PUBLIC_SCHEMA:  # one shared set of tables: not a tenant served
            _SCHEMAS_SERVED.setdefault(self.connection, set()).add(self.schema_name)
        durable = self.get_autocommit() and not self.in_atomic_block
        self._server_search_path = path if durable else None
        self._server_search_path_proved_at = now


__all__ = ["DatabaseWrapper", "psycopg"]
