"""Every way a tenant schema is made gives a distributed schema on a worker."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from shared_apps.accounts.models import User
from shared_apps.fleet import creation
from shared_apps.fleet.provisioning import TEMPLATE, ProvisioningPath, pool_fill, schema_provision
from shared_apps.tenants.models import PooledSchema
from tenancy import TenantRef, public_context, tenant_context
from tenancy.schemas import schema_exists, schema_name_for
from tests.citus.conftest import run_subdomain, schema_node, worker_nodes
from tests.factories import TEST_PASSWORD
from tests.fixtures import table_columns

pytestmark = pytest.mark.citus


def _ref(name: str) -> TenantRef:
    tenant_id = uuid.uuid4()
    return TenantRef(
        id=tenant_id,
        schema_name=schema_name_for(tenant_id),
        subdomain=run_subdomain(name),
        name=name,
        status="active",
    )


def _local_bytes(schema_name: str) -> int:
    """The size of the coordinator's own files of the schema's tables: rows that stayed
    there when it was distributed (invisible to queries, but on disk)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_catalog.pg_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r'",
            [schema_name],
        )
        return int(cursor.fetchone()[0])


def test_signup_replaying_the_template_makes_a_distributed_schema(db: None) -> None:
    created = creation.tenant_create(
        name="Replayed",
        subdomain=run_subdomain("replayed"),
        owner_email="o@replayed.test",
        owner_password=TEST_PASSWORD,
    )
    assert created.provisioning == ProvisioningPath.TEMPLATE
    assert schema_node(created.tenant.schema_name) in worker_nodes()
    with tenant_context(created.tenant):
        assert list(User.objects.values_list("email", flat=True)) == ["o@replayed.test"]
        assert User.objects.get().pk == 1  # identities start fresh on the worker too
    assert _local_bytes(created.tenant.schema_name) == 0


def test_pooled_schemas_are_distributed_ahead_and_a_signup_claims_one(db: None) -> None:
    assert pool_fill(size=1) == 1
    with public_context():
        pooled_id = PooledSchema.objects.get().id
    assert schema_node(schema_name_for(pooled_id)) in worker_nodes()
    created = creation.tenant_create(
        name="Pooled",
        subdomain=run_subdomain("pooled"),
        owner_email="o@pooled.test",
        owner_password=TEST_PASSWORD,
    )
    assert created.provisioning == ProvisioningPath.POOL
    assert created.tenant.id == pooled_id
    with tenant_context(created.tenant):
        assert list(User.objects.values_list("email", flat=True)) == ["o@pooled.test"]


def test_migrating_a_new_schema_without_template_distributes_it(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = _ref("migrated")
    monkeypatch.setattr(TEMPLATE, "sql", lambda: None)
    with public_context():
        assert schema_provision(tenant=tenant) == ProvisioningPath.MIGRATE
    assert schema_node(tenant.schema_name) in worker_nodes()
    assert {"id", "email", "role"} <= table_columns(tenant.schema_name, "accounts_user")
    assert _local_bytes(tenant.schema_name) == 0


def test_a_failed_signup_leaves_no_schema_on_any_node(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    real = creation.schema_provision

    def provision_then_fail(*, tenant: TenantRef, pooled: bool = False) -> ProvisioningPath:
        real(tenant=tenant, pooled=pooled)
        made.append(tenant.schema_name)
        raise RuntimeError("the step after the schema failed")

    monkeypatch.setattr(creation, "schema_provision", provision_then_fail)
    with pytest.raises(RuntimeError):
        creation.tenant_create(
            name="Failed",
            subdomain=run_subdomain("failed"),
            owner_email="o@failed.test",
            owner_password=TEST_PASSWORD,
        )
    assert len(made) == 1
    assert not schema_exists(made[0])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
            [made[0]],
        )
        assert cursor.fetchone() == (0,)
