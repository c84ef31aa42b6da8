"""`tenants verify`: every tenant's schema against the provisioning template, in one query.

A tenant's `search_path` is `"t_<hex>", public`. Where a tenant's table is missing,
PostgreSQL resolves the name to public's table of the same name (platform staff in
`accounts_user`, public sessions in `django_session`) instead of failing. So a tenant whose
schema no longer matches its migrations is quarantined: its hosts answer 503 and its tasks
are skipped until a later check finds it whole again and releases it.

What a schema must have is the template's catalog (`SchemaTemplate.catalog`, read from the
migrated template schema when it was built), and only tenants whose ledger row says they
are at the template's migrations are compared: a tenant behind them (a release not yet
migrated) is reported as unchecked, never quarantined for it. A schema is broken when it
is gone, lacks a table or, for the tables public also has, a column, or has a table the
template has not but public has (it would hide public's). Other extra tables are reported
only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import connection

from shared_apps.audit.services import audited
from shared_apps.fleet.errors import OperationFailedError
from shared_apps.fleet.provisioning import TEMPLATE_NAME
from shared_apps.fleet.quarantine import REASON_MAX_CHARS, tenant_quarantine, tenant_release
from shared_apps.tenants.models import Tenant
from tenancy import public_context

logger = logging.getLogger(__name__)

# One statement for the whole fleet. Index probes on pg_class (relname, relnamespace) and
# pg_attribute (attrelid, attname), one scan of each tenant's tables: no per-tenant round
# trip, no information_schema (its views check privileges row by row and are slow on large
# catalogs). The first row always comes (the template's state, NULL when there is none).
_CHECK_SQL = """
WITH template AS (
    SELECT migration_state, catalog FROM public.tenants_schematemplate WHERE name = %(template)s
),
expected AS (
    SELECT e.key AS relname, e.value AS columns,
           EXISTS (
               SELECT 1 FROM pg_catalog.pg_class p
               WHERE p.relname = e.key AND p.relnamespace = 'public'::regnamespace
           ) AS in_public
    FROM template, pg_catalog.jsonb_each(template.catalog) AS e
),
tenant AS (
    SELECT t.id, t.subdomain, t.status, t.quarantined_at IS NOT NULL AS quarantined,
           t.quarantine_cause,
           n.oid AS nsp, coalesce(m.migration_state = tp.migration_state, false) AS at_template
    FROM public.tenants_tenant t
    CROSS JOIN template tp
    LEFT JOIN public.tenants_tenantmigration m ON m.tenant_id = t.id
    LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
    WHERE t.status IN ('active', 'suspended')
      AND (pg_catalog.cardinality(%(subdomains)s::text[]) = 0
           OR t.subdomain = ANY(%(subdomains)s::text[]))
),
checked AS (
    SELECT id, nsp FROM tenant WHERE at_template AND nsp IS NOT NULL
),
present AS (
    SELECT k.id, c.oid, c.relname::text AS relname
    FROM checked k
    JOIN pg_catalog.pg_class c ON c.relnamespace = k.nsp AND c.relkind IN ('r', 'p')
),
missing AS (
    SELECT k.id, pg_catalog.array_agg(e.relname ORDER BY e.relname) AS tables
    FROM checked k CROSS JOIN expected e
    WHERE NOT EXISTS (SELECT 1 FROM present p WHERE p.id = k.id AND p.relname = e.relname)
    GROUP BY k.id
),
extra AS (
    SELECT p.id,
           pg_catalog.array_agg(p.relname ORDER BY p.relname) AS tables,
           pg_catalog.array_agg(p.relname ORDER BY p.relname) FILTER (
               WHERE EXISTS (
                   SELECT 1 FROM pg_catalog.pg_class c
                   WHERE c.relname = p.relname AND c.relnamespace = 'public'::regnamespace
               )
           ) AS shadowing
    FROM present p
    WHERE NOT EXISTS (SELECT 1 FROM expected e WHERE e.relname = p.relname)
    GROUP BY p.id
),
missing_columns AS (
    SELECT p.id,
           pg_catalog.array_agg(p.relname || '.' || col.name ORDER BY p.relname, col.name)
               AS columns
    FROM present p
    JOIN expected e ON e.relname = p.relname AND e.in_public
    CROSS JOIN LATERAL pg_catalog.jsonb_array_elements_text(e.columns) AS col(name)
    WHERE NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = p.oid AND a.attname = col.name AND a.attnum > 0
          AND NOT a.attisdropped
    )
    GROUP BY p.id
)
SELECT tp.migration_state, t.id, t.subdomain, t.status, t.quarantined, t.quarantine_cause,
       t.nsp IS NOT NULL, t.at_template,
       coalesce(m.tables, '{}'), coalesce(mc.columns, '{}'),
       coalesce(x.shadowing, '{}'), coalesce(x.tables, '{}')
FROM (SELECT 1) AS always
LEFT JOIN template tp ON true
LEFT JOIN tenant t ON true
LEFT JOIN missing m ON m.id = t.id
LEFT JOIN missing_columns mc ON mc.id = t.id
LEFT JOIN extra x ON x.id = t.id
ORDER BY t.subdomain
"""


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
        }


@dataclass(frozen=True)
class FleetSchemaCheck:
    template_state: str
    tenants: list[TenantSchemaCheck]


def fleet_schema_check(*, subdomains: list[str] | tuple[str, ...] = ()) -> FleetSchemaCheck:
    """Compare every served tenant's schema (or the named ones') with the template, in one
    query, changing nothing.

    Raises:
        OperationFailedError: no template catalog to compare with (`tenants template`).
    """
    with public_context(), connection.cursor() as cursor:
        cursor.execute(
            _CHECK_SQL,
            {"template": TEMPLATE_NAME, "subdomains": [name.lower() for name in subdomains]},
        )
        rows = cursor.fetchall()
    state = rows[0][0]
    if state is None:
        raise OperationFailedError(
            "there is no provisioning template to compare with; run `tenants template`"
        )
    tenants = [
        TenantSchemaCheck(
            tenant_id=tenant_id,
            subdomain=subdomain,
            status=status,
            was_quarantined=quarantined,
            quarantine_cause=quarantine_cause or "",
            checked=schema_present and at_template,
            schema_missing=not schema_present,
            missing_tables=list(missing),
            missing_columns=list(missing_columns),
            shadowing_tables=list(shadowing),
            extra_tables=list(extra),
        )
        for (
            _,
            tenant_id,
            subdomain,
            status,
            quarantined,
            quarantine_cause,
            schema_present,
            at_template,
            missing,
            missing_columns,
            shadowing,
            extra,
        ) in rows
        if tenant_id is not None
    ]
    return FleetSchemaCheck(template_state=state, tenants=tenants)


@dataclass(frozen=True)
class FleetVerification:
    template_state: str
    tenants: list[TenantSchemaCheck]
    quarantined: list[str]  # newly, by this run
    released: list[str]
    still_quarantined: list[str]  # quarantined after this run (the new ones included)

    @property
    def unchecked(self) -> list[str]:
        return [t.subdomain for t in self.tenants if not t.checked and not t.schema_missing]

    @property
    def findings(self) -> list[TenantSchemaCheck]:
        """Tenants with anything to report: broken, extra tables, or quarantined."""
        return [
            t
            for t in self.tenants
            if t.is_broken or t.extra_tables or t.subdomain in self.still_quarantined
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "template_state": self.template_state,
            "checked": sum(t.checked for t in self.tenants),
            "unchecked": self.unchecked,
            "quarantined": self.still_quarantined,
            "newly_quarantined": self.quarantined,
            "released": self.released,
            "tenants": [
                {**t.as_dict(), "quarantined": t.subdomain in self.still_quarantined}
                for t in self.findings
            ],
        }


def fleet_verify(*, actor: str, subdomains: list[str] | tuple[str, ...] = ()) -> FleetVerification:
    """Check every served tenant's schema (or the named ones'); quarantine the broken ones
    and release the quarantined ones found whole again (each audited, as is the run).

    A tenant not at the template's migrations keeps its quarantine, or its freedom, until
    it is.

    Raises:
        OperationFailedError: no template catalog to compare with (`tenants template`).
    """
    with audited("tenants.verify", actor=actor, atomic=False) as entry:
        check = fleet_schema_check(subdomains=subdomains)
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
        )
        entry.detail.update(
            checked=sum(t.checked for t in check.tenants),
            unchecked=len(result.unchecked),
            quarantined=still,
            newly_quarantined=quarantined,
            released=released,
        )
    return result
