"""Fleet tests' fixtures: six committed tenants for `tenants migrate` in a child process, and
a committed tenant with projects, tasks and a file for archive, restore and export."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from shared_apps.accounts.models import User
from shared_apps.fleet.creation import tenant_create
from shared_apps.fleet.provisioning import TEMPLATE
from shared_apps.tenants.models import SchemaTemplate, Tenant, TenantMigration
from tenancy import public_context, tenant_context
from tenant_apps.projects.services import attachment_upload, project_create, task_create
from tests.factories import TEST_PASSWORD
from tests.fixtures import CliResult, table_columns, tenant_purge
from tests.infra import BUCKET

SUBDOMAINS = [f"fleet-{number}" for number in range(1, 7)]
# The lifecycle tests' own tenant.
SUBDOMAIN = "lifecycle"


def columns_of(tenant: Tenant) -> set[str]:
    return table_columns(tenant.schema_name, "fleet_probe_probe")


def recorded_of(tenant: Tenant) -> set[str]:
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("SELECT name FROM django_migrations WHERE app = 'fleet_probe'")
        return {row[0] for row in cursor.fetchall()}


def record_of(tenant: Tenant) -> TenantMigration:
    with public_context():
        return TenantMigration.objects.get(tenant=tenant)


def probes_add(tenant: Tenant, *names: str) -> None:
    with tenant_context(tenant), connection.cursor() as cursor:
        for name in names:
            cursor.execute("INSERT INTO fleet_probe_probe (name) VALUES (%s)", [name])


def events_of(stdout: str, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == event]


@pytest.fixture
def fleet(committed: Any) -> Iterator[list[Tenant]]:
    """Six committed tenants (oldest first) for a child process to migrate; removed
    afterwards, and the provisioning template put back to the migrations the rest of the
    suite has on disk."""
    with public_context():
        saved = SchemaTemplate.objects.get(name="tenant")
    tenants = [
        tenant_create(
            name=f"Fleet {subdomain}",
            subdomain=subdomain,
            owner_email=f"owner@{subdomain}.test",
            owner_password=TEST_PASSWORD,
        ).tenant
        for subdomain in SUBDOMAINS
    ]
    yield tenants
    for subdomain in SUBDOMAINS:
        tenant_purge(subdomain)
    with public_context():
        SchemaTemplate.objects.filter(name="tenant").update(
            migration_state=saved.migration_state, sql=saved.sql, catalog=saved.catalog
        )
    TEMPLATE.forget()


@pytest.fixture
def migrate_cli(manage_cli: Callable[..., CliResult]) -> Callable[..., CliResult]:
    """`tenants migrate` of the six tenants only, with `module` as the probe app's
    migrations on disk."""

    def run(module: str, *args: str) -> CliResult:
        return manage_cli(
            "tenants",
            "migrate",
            "--tenant",
            *SUBDOMAINS,
            *args,
            env={"FLEET_PROBE_MIGRATIONS": module},
        )

    return run


@pytest.fixture
def lifecycle_tenant(
    committed: Any, s3_storage: None, settings: Any, s3_client: Any
) -> Iterator[Tenant]:
    """A committed tenant with projects, tasks and a file; removed with its files after."""
    settings.TENANT_ROUTE_RECHECK_SECONDS = 0  # no process but this one serves it
    tenant = tenant_create(
        name="Lifecycle Ltd",
        subdomain=SUBDOMAIN,
        owner_email="owner@lifecycle.test",
        owner_password=TEST_PASSWORD,
    ).tenant
    with tenant_context(tenant):
        owner = User.objects.get(email="owner@lifecycle.test")
        project = project_create(actor=owner, name="Lifecycle launch", description="Ü ✓")
        task_create(
            actor=owner, project=project, title="Ship it", assignee_id=owner.pk, due_date=None
        )
        upload = SimpleUploadedFile("plan.txt", b"the plan\x00\xff", content_type="text/plain")
        attachment_upload(actor=owner, project=project, upload=upload)
        cache.set("dashboard", "lifecycle numbers")
    yield tenant
    tenant_purge(SUBDOMAIN)
    listing = s3_client.list_objects_v2(Bucket=BUCKET, Prefix=f"tenants/{tenant.id}/")
    for item in listing.get("Contents", []):
        s3_client.delete_object(Bucket=BUCKET, Key=item["Key"])


@pytest.fixture
def beta(committed: tuple[Tenant, Tenant]) -> Tenant:
    """The session's second tenant, written to without a test transaction (a child process
    must see its rows); its projects are removed after the test."""
    return committed[1]
