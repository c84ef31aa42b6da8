"""The Citus tests' set-up: the cluster's own database, and tenants on both workers.

`make test-citus` points DATABASE_URL at CITUS_URL, a database on a Citus coordinator.
pytest-django must not create a test database there (a database on a cluster needs every
node), so `django_db_setup` uses that database as it is, pytest-django's pattern for an
existing external database, and brings it to the current migrations and template. Tests
with `db` still run in a transaction that is rolled back.

The database outlives the run: the tenants a run commits carry the run's id in their
subdomain (`ct-<run>-…`) and are removed at the end, and those a crashed run left behind
are removed at the start.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from shared_apps.fleet.creation import tenant_create
from shared_apps.fleet.provisioning import template_refresh
from shared_apps.tenants.models import Domain, Tenant
from tenancy import public_context, schemas
from tenancy.citus import citus_mode
from tests.factories import TEST_PASSWORD
from tests.fixtures import ROOT, CliResult

SUBDOMAIN_PREFIX = "ct-"
RUN = secrets.token_hex(3)


@dataclass(frozen=True)
class ClusterTenant:
    """A committed tenant of this run, with the worker that holds its schema."""

    tenant: Tenant
    owner_email: str
    node: str  # host:port

    @property
    def host(self) -> str:
        return f"{self.tenant.subdomain}.localhost"

    def client(self) -> Client:
        return Client(HTTP_HOST=self.host)


def run_subdomain(name: str) -> str:
    """A subdomain that names this run, so that its end (or the next run) removes it."""
    return f"{SUBDOMAIN_PREFIX}{RUN}-{name}"


def tenants_purge(prefix: str) -> int:
    """Remove the committed tenants whose subdomain starts with `prefix`, schemas included.

    Tests only: production removes tenants through archive and delete.
    """
    with public_context():
        found = list(Tenant.objects.filter(subdomain__startswith=prefix))
        for tenant in found:
            Domain.objects.filter(tenant=tenant).delete()
            schemas.schema_drop(tenant.schema_name)
            tenant.delete()
    return len(found)


def schema_node(schema_name: str) -> str | None:
    """The worker (host:port) holding a distributed schema's tables; None if it is local."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT s.nodename || ':' || s.nodeport FROM citus_schemas cs "
            "JOIN citus_shards s ON s.colocation_id = cs.colocation_id "
            "WHERE cs.schema_name::text = %s",
            [schema_name],
        )
        rows = cursor.fetchall()
    assert len(rows) <= 1, f"{schema_name} spans nodes: {rows}"
    return rows[0][0] if rows else None


def worker_nodes() -> list[str]:
    """The workers that take tenant schemas (host:port), in a stable order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nodename || ':' || nodeport FROM pg_dist_node "
            "WHERE shouldhaveshards AND isactive AND noderole = 'primary' "
            "ORDER BY nodename, nodeport"
        )
        return [row[0] for row in cursor.fetchall()]


def schema_move(schema_name: str, node: str) -> None:
    """Move a distributed schema to another worker (writes to it wait meanwhile)."""
    host, port = node.rsplit(":", 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT citus_schema_move(%s::regnamespace, %s, %s, "
            "shard_transfer_mode := 'block_writes')",
            [schema_name, host, int(port)],
        )


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: Any) -> Iterator[None]:
    """The coordinator database as it is, migrated, with a fresh provisioning template."""
    with django_db_blocker.unblock():
        assert citus_mode(), "CITUS_URL does not name a database with the citus extension"
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        tenants_purge(SUBDOMAIN_PREFIX)  # left by a run that did not finish
        template_refresh()
    yield
    with django_db_blocker.unblock():
        tenants_purge(run_subdomain(""))


@pytest.fixture(scope="session")
def provisioning_template(django_db_setup: None) -> None:
    """Built by `django_db_setup` (the root fixture would build it once more)."""


def committed_tenant(name: str) -> Tenant:
    """A tenant of this run, made and committed the way signups make tenants."""
    subdomain = run_subdomain(name)
    return tenant_create(
        name=f"Cluster {name}",
        subdomain=subdomain,
        owner_email=f"owner@{subdomain}.test",
        owner_password=TEST_PASSWORD,
    ).tenant


def tenants_on_both_workers(
    first_name: str, second_name: str
) -> tuple[ClusterTenant, ClusterTenant]:
    """Two committed tenants on different workers (the second is moved if Citus placed both
    on the same). Call with database access unblocked."""
    first, second = committed_tenant(first_name), committed_tenant(second_name)
    workers = worker_nodes()
    assert len(workers) >= 2, f"the cluster needs two workers, it has {workers}"
    first_node, second_node = schema_node(first.schema_name), schema_node(second.schema_name)
    assert first_node in workers, f"{first.schema_name} is not on a worker: {first_node}"
    assert second_node in workers, f"{second.schema_name} is not on a worker: {second_node}"
    if first_node == second_node:
        second_node = next(node for node in workers if node != first_node)
        schema_move(second.schema_name, second_node)
        assert schema_node(second.schema_name) == second_node
    return (
        ClusterTenant(first, f"owner@{first.subdomain}.test", first_node),
        ClusterTenant(second, f"owner@{second.subdomain}.test", second_node),
    )


@pytest.fixture(scope="session")
def cluster_tenants(
    django_db_setup: None, django_db_blocker: Any
) -> tuple[ClusterTenant, ClusterTenant]:
    """Two committed tenants for the session, on different workers."""
    with django_db_blocker.unblock():
        return tenants_on_both_workers("east", "west")


def manage(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """Run `manage.py` in a child process on the cluster's database, as an operator would."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **(env or {})},
    )
    return CliResult(done.returncode, done.stdout, done.stderr)
