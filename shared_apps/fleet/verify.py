"""`tenants verify`: every tenant's schema against the provisioning template, in one query.

A tenant's `search_path` is `"t_<hex>", public`. Where a tenant's table is missing,
PostgreSQL resolves the name to public's table of the same name (platform staff in
`accounts_user`, public sessions in `django_session`) instead of failing. So a tenant whose
schema no longer matches its migrations is quarantined: its hosts answer 503 and its tasks
are skipped until a later check finds it whole again and releases it.

What a schema must have is the template's catalog (`SchemaTemplate.catalog`, read from the
migrated template schema when it was built; see `catalog`), and only tenants whose ledger
row says they are at the template's migrations are compared: a tenant behind them (a
release not yet migrated) is reported as unchecked, never quarantined for it. One query
reads the tenants, the template and the catalog of every tenant schema compared; Python
compares each with the template's.

Every difference is drift, reported per tenant (tables, columns, indexes, constraints,
sequences, comments, ...). A schema is broken, and quarantined, when it is gone, lacks a
table or, for the tables public also has, a column, or has a table the template has not but
public has (it would hide public's). A schema that drifted in any other way is served, and
archived with pg_dump rather than from its template (`archive`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import connection

from shared_apps.audit.services import audited
from shared_apps.fleet.catalog import (
    FLEET_SKIPPED_KINDS,
    NO_DIFFERENCE,
    CatalogDiff,
    SchemaCatalog,
    catalog_diff,
    catalog_query,
    catalogs_from_rows,
)
from shared_apps.fleet.errors import OperationFailedError
from shared_apps.fleet.provisioning import TEMPLATE_NAME
from shared_apps.fleet.quarantine import REASON_MAX_CHARS, tenant_quarantine, tenant_release
from shared_apps.tenants.models import Tenant
from tenancy import public_context

logger = logging.getLogger(__name__)

# The tenants served (or the named ones), the template, and the schemas to compare: those
# of tenants at the template's migrations.
_FLEET_CTES = """
template AS (
    SELECT migration_state, catalog FROM public.tenants_schematemplate WHERE name = %(template)s
),
tenant AS (
    SELECT t.id, t.subdomain, t.status, t.schema_name,
           t.quarantined_at IS NOT NULL AS quarantined, t.quarantine_cause,
           n.oid AS nsp, coalesce(m.migration_state = tp.migration_state, false) AS at_template
    FROM public.tenants_tenant t
    CROSS JOIN template tp
    LEFT JOIN public.tenants_tenantmigration m ON m.tenant_id = t.id
    LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
    WHERE t.status IN ('active', 'suspended')
      AND (pg_catalog.cardinality(%(subdomains)s::text[]) = 0
           OR t.subdomain = ANY(%(subdomains)s::text[]))
),
"""
_FLEET_NAMESPACES = """
    SELECT nsp AS oid, schema_name::text AS nspname, false AS is_public
    FROM tenant WHERE at_template AND nsp IS NOT NULL
    UNION ALL
    SELECT oid, nspname::text, true FROM pg_catalog.pg_namespace WHERE nspname = 'public'
"""
_FLEET_ROWS = """
SELECT schema_name::text, 'tenant',
       concat_ws('|', subdomain, id, status, quarantined, quarantine_cause, at_template,
                 nsp IS NOT NULL)
FROM tenant
UNION ALL
SELECT NULL, 'template', json_build_object('state', migration_state, 'catalog', catalog)::text
FROM template
"""
_CHECK_SQL = catalog_query(_FLEET_NAMESPACES, fleet=True, ctes=_FLEET_CTES, rows=_FLEET_ROWS)


@dataclass(frozen=True)
class TenantSchemaCheck:
    """How one tenant's schema compares with the template at its migrations."""

    tenant_id: UUID
    subdomain: str
    status: str
    was_quarantined: bool
    checked: bool  # at the template's migrations and its schema exists
    quarantine_cause: str = ""
    schema_missing: bool = False
    missing_tables: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)  # `table.column`
    shadowing_tables: list[str] = field(default_factory=list)  # not expected, but in public
    extra_tables: list[str] = field(default_factory=list)  # not expected (shadowing included)
    drift: CatalogDiff = NO_DIFFERENCE  # every difference from the template

    @property
    def id(self) -> UUID:  # what the audit trail reads of a tenant
        return self.tenant_id

    @property
    def in_maintenance(self) -> bool:
        return self.quarantine_cause == Tenant.QuarantineCause.MIGRATION_FAILED

    @property
    def is_broken(self) -> bool:
        """Whether a query of this tenant could reach public's tables, or fails outright."""
        return self.schema_missing or bool(
            self.missing_tables or self.missing_columns or self.shadowing_tables
        )

    @property
    def is_whole(self) -> bool:
        return self.checked and not self.is_broken

    @property
    def has_drifted(self) -> bool:
        return not self.drift.is_empty

    def reason(self) -> str:
        parts = ["schema missing"] if self.schema_missing else []
        for label, names in (
            ("missing tables", self.missing_tables),
            ("missing columns", self.missing_columns),
            ("tables hiding public's", self.shadowing_tables),
        ):
            if names:
                parts.append(f"{label}: {', '.join(names)}")
        return "; ".join(parts)[:REASON_MAX_CHARS]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.tenant_id),
            "subdomain": self.subdomain,
            "status": self.status,
            "checked": self.checked,
            "schema_missing": self.schema_missing,
            "missing_tables": self.missing_tables,
            "missing_columns": self.missing_columns,
            "shadowing_tables": self.shadowing_tables,
            "extra_tables": self.extra_tables,
            "drift": self.drift.as_dict(),
        }


def schema_check(
    expected: SchemaCatalog,
    actual: SchemaCatalog,
    public_relations: set[str],
    *,
    skipped: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Compare one schema's catalog with the template's: the drift, and what of it breaks
    the schema (the fields of a TenantSchemaCheck)."""
    drift = catalog_diff(expected, actual, skipped=skipped)
    if drift.is_empty:
        return {"drift": drift}
    expected_tables = set(expected.tables())
    actual_tables = set(actual.tables())
    extra_tables = sorted(actual_tables - expected_tables)
    missing_columns = [
        key for key in drift.missing.get("column", []) if key.partition(".")[0] in public_relations
    ]
    return {
        "drift": drift,
        "missing_tables": sorted(expected_tables - actual_tables),
        "missing_columns": missing_columns,
        "extra_tables": extra_tables,
        "shadowing_tables": [table for table in extra_tables if table in public_relations],
    }


@dataclass(frozen=True)
class FleetSchemaCheck:
    template_state: str
    tenants: list[TenantSchemaCheck]
    seconds_reading: float = 0.0  # the one query
    seconds_comparing: float = 0.0


Progress = Callable[[str, dict[str, Any]], None]


def fleet_schema_check(
    *, subdomains: list[str] | tuple[str, ...] = (), progress: Progress | None = None
) -> FleetSchemaCheck:
    """Compare every served tenant's schema (or the named ones') with the template, in one
    query, changing nothing. `progress` hears of each phase as it ends.

    Raises:
        OperationFailedError: no template catalog to compare with (`tenants template`).
    """
    started = time.monotonic()
    with public_context(), connection.cursor() as cursor:
        cursor.execute(
            _CHECK_SQL,
            {
                "template": TEMPLATE_NAME,
                "subdomains": [name.lower() for name in subdomains],
                "expressions": False,
            },
        )
        rows = cursor.fetchall()
    read = time.monotonic()
    tenant_rows: list[tuple[str, list[str]]] = []
    template_rows, catalog_rows = [], []
    for row in rows:
        kind = row[1]
        if kind == "tenant":
            tenant_rows.append((row[0], row[2].split("|")))
        elif kind == "template":
            template_rows.append(json.loads(row[2]))
        else:
            catalog_rows.append(row)
    if progress is not None:
        progress("read", {"schemas": len(tenant_rows), "seconds": read - started})
    if not template_rows:
        raise OperationFailedError(
            "there is no provisioning template to compare with; run `tenants template`"
        )
    state = template_rows[0]["state"]
    expected = SchemaCatalog.from_json(template_rows[0]["catalog"])
    if expected is None:
        raise OperationFailedError(
            "the provisioning template predates catalogs of this kind; run `tenants template`"
        )
    catalogs, public_relations = catalogs_from_rows(catalog_rows)
    tenants = []
    for schema_name, fields in sorted(tenant_rows, key=lambda row: row[1][0]):
        subdomain, tenant_id, status, quarantined, cause, at_template, present = fields
        schema_present, checked = present == "t", present == "t" and at_template == "t"
        found: dict[str, Any] = {}
        if checked:
            found = schema_check(
                expected,
                catalogs.get(schema_name, SchemaCatalog()),
                public_relations,
                skipped=FLEET_SKIPPED_KINDS,
            )
        tenants.append(
            TenantSchemaCheck(
                tenant_id=UUID(tenant_id),
                subdomain=subdomain,
                status=status,
                was_quarantined=quarantined == "t",
                quarantine_cause=cause,
                checked=checked,
                schema_missing=not schema_present,
                **found,
            )
        )
    compared = time.monotonic()
    if progress is not None:
        progress("compared", {"tenants": len(tenants), "seconds": compared - read})
    return FleetSchemaCheck(
        template_state=state,
        tenants=tenants,
        seconds_reading=read - started,
        seconds_comparing=compared - read,
    )


@dataclass(frozen=True)
class FleetVerification:
    template_state: str
    tenants: list[TenantSchemaCheck]
    quarantined: list[str]  # newly, by this run
    released: list[str]
    still_quarantined: list[str]  # quarantined after this run (the new ones included)
    seconds: dict[str, float] = field(default_factory=dict)  # reading, comparing

    @classmethod
    def nothing_checked(cls, *, template_state: str) -> FleetVerification:
        return cls(template_state, tenants=[], quarantined=[], released=[], still_quarantined=[])

    @property
    def unchecked(self) -> list[str]:
        return [t.subdomain for t in self.tenants if not t.checked and not t.schema_missing]

    @property
    def drifted(self) -> list[str]:
        return [t.subdomain for t in self.tenants if t.has_drifted]

    @property
    def findings(self) -> list[TenantSchemaCheck]:
        """Tenants with anything to report: broken, drifted, or quarantined."""
        return [
            t
            for t in self.tenants
            if t.is_broken or t.has_drifted or t.subdomain in self.still_quarantined
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "template_state": self.template_state,
            "checked": sum(t.checked for t in self.tenants),
            "unchecked": self.unchecked,
            "drifted": self.drifted,
            "quarantined": self.still_quarantined,
            "newly_quarantined": self.quarantined,
            "released": self.released,
            "seconds": {phase: round(value, 3) for phase, value in self.seconds.items()},
            "tenants": [
                {**t.as_dict(), "quarantined": t.subdomain in self.still_quarantined}
                for t in self.findings
            ],
        }


def fleet_verify(
    *,
    actor: str,
    subdomains: list[str] | tuple[str, ...] = (),
    progress: Progress | None = None,
) -> FleetVerification:
    """Check every served tenant's schema (or the named ones'); quarantine the broken ones
    and release the quarantined ones found whole again (each audited, as is the run).

    A tenant not at the template's migrations keeps its quarantine, or its freedom, until
    it is; a tenant in maintenance (its migration failed) keeps it until a run migrates it.

    Raises:
        OperationFailedError: no template catalog to compare with (`tenants template`).
    """
    with audited("tenants.verify", actor=actor, atomic=False) as entry:
        check = fleet_schema_check(subdomains=subdomains, progress=progress)
        quarantined, released = [], []
        for tenant in check.tenants:
            if tenant.is_broken and not tenant.was_quarantined:
                changed = tenant_quarantine(
                    tenant=tenant,
                    cause=Tenant.QuarantineCause.SCHEMA_DRIFT,
                    reason=tenant.reason(),
                    actor=actor,
                    schema_missing=tenant.schema_missing,
                    missing_tables=tenant.missing_tables,
                    missing_columns=tenant.missing_columns,
                    shadowing_tables=tenant.shadowing_tables,
                )
                quarantined += [tenant.subdomain] if changed else []
            elif tenant.was_quarantined and tenant.is_whole and not tenant.in_maintenance:
                # A failed migration's maintenance ends only with a run that migrates it.
                changed = tenant_release(tenant=tenant, actor=actor)
                released += [tenant.subdomain] if changed else []
        still = [
            t.subdomain
            for t in check.tenants
            if (t.was_quarantined and t.subdomain not in released) or t.subdomain in quarantined
        ]
        result = FleetVerification(
            template_state=check.template_state,
            tenants=check.tenants,
            quarantined=quarantined,
            released=released,
            still_quarantined=still,
            seconds={"reading": check.seconds_reading, "comparing": check.seconds_comparing},
        )
        entry.detail.update(
            checked=sum(t.checked for t in check.tenants),
            unchecked=len(result.unchecked),
            drifted=len(result.drifted),
            quarantined=still,
            newly_quarantined=quarantined,
            released=released,
        )
    return result
