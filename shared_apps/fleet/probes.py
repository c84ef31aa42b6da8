"""What only the fleet knows, for /readyz, /version and /metrics (registered in apps.py).

The platform layer (core) cannot import apps; the fleet registers these with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from prometheus_client.core import GaugeMetricFamily, Metric

from core.health import CheckFailedError
from shared_apps.fleet.provisioning import TEMPLATE, TEMPLATE_NAME
from shared_apps.tenants.models import PooledSchema, SchemaTemplate, Tenant, TenantMigration
from tenancy import public_context


def template_readiness_check() -> None:
    """The provisioning template exists and matches this release's tenant migrations."""
    with public_context():
        stored = (
            SchemaTemplate.objects.filter(name=TEMPLATE_NAME)
            .values_list("migration_state", flat=True)
            .first()
        )
    if stored is None:
        raise CheckFailedError("no provisioning template: run manage.py tenants template")
    if stored != TEMPLATE.expected_state():
        raise CheckFailedError("provisioning template is stale: run manage.py tenants template")


def tenant_migrations_count() -> dict[str, int]:
    """Unarchived tenants current, behind and failed against the migrations on disk (one query)."""
    target = TEMPLATE.expected_state()
    failed = Q(migration__state=TenantMigration.State.FAILED)
    with public_context():
        counts = Tenant.objects.exclude(status=Tenant.Status.ARCHIVED).aggregate(
            total=Count("pk"),
            failed=Count("pk", filter=failed),
            current=Count("pk", filter=Q(migration__migration_state=target) & ~failed),
        )
    return {
        "current": counts["current"],
        "behind": counts["total"] - counts["current"] - counts["failed"],
        "failed": counts["failed"],
    }


def tenant_migrations_version(detailed: bool) -> dict[str, Any]:
    """/version: counts for a caller with the metrics token, a one-word state for others."""
    counts = tenant_migrations_count()
    if detailed:
        return counts
    state = "failed" if counts["failed"] else "behind" if counts["behind"] else "current"
    return {"state": state}


def fleet_metrics() -> Iterator[Metric]:
    """Scrape time: tenants by status, where their migrations stand, and the schema pool."""
    with public_context():
        by_status = dict(
            Tenant.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
        )
        quarantined = Tenant.objects.filter(quarantined_at__isnull=False).count()
        pooled = PooledSchema.objects.filter(migration_state=TEMPLATE.expected_state()).count()
    tenants = GaugeMetricFamily("platform_tenants", "Tenants by status.", labels=["status"])
    for status in Tenant.Status.values:
        tenants.add_metric([status], by_status.get(status, 0))
    yield tenants
    yield GaugeMetricFamily(
        "platform_tenants_quarantined",
        "Tenants quarantined (not routed, tasks skipped): a broken schema, or in maintenance "
        "after a failed migration.",
        value=quarantined,
    )
    migrations = GaugeMetricFamily(
        "platform_tenant_migrations",
        "Unarchived tenants by migration state against this release (current, behind, failed).",
        labels=["state"],
    )
    for state, count in tenant_migrations_count().items():
        migrations.add_metric([state], count)
    yield migrations
    yield GaugeMetricFamily(
        "platform_tenant_pool_schemas",
        "Ready schemas in the signup pool, built for this release's migrations.",
        value=pooled,
    )
    yield GaugeMetricFamily(
        "platform_tenant_pool_target",
        "How many ready schemas the pool should hold (TENANT_POOL_SIZE).",
        value=settings.TENANT_POOL_SIZE,
    )
