"""The tenant context is per thread and per task, fails closed, never reads public by mistake."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import (
    NoActiveTenantError,
    TenantRef,
    TenantSchemaMissingError,
    current_tenant,
    public_context,
    require_tenant,
    tenant_context,
)
from tenancy.db import tenant_connection
from tenancy.schemas import quote, schema_name_for
from tenant_apps.workspace.models import WorkspaceSettings
from tests.factories import (
    TEST_PASSWORD,
    DomainFactory,
    TenantFactory,
    UserFactory,
    WorkspaceSettingsFactory,
)
from tests.fixtures import sign_in


def test_require_tenant_raises_when_none_is_active() -> None:
    with pytest.raises(NoActiveTenantError):
        require_tenant()
    with public_context(), pytest.raises(NoActiveTenantError):
        require_tenant()


def test_tenant_only_model_is_refused_on_public(db: None) -> None:
    with public_context(), pytest.raises(NoActiveTenantError):
        WorkspaceSettings.objects.count()
    with pytest.raises(NoActiveTenantError):  # nothing entered at all
        list(WorkspaceSettings.objects.all())


def test_tenant_only_model_works_inside_a_tenant(in_tenant_a: Tenant) -> None:
    WorkspaceSettingsFactory.create(timezone="Europe/Berlin")
    assert WorkspaceSettings.objects.get().timezone == "Europe/Berlin"


def test_activating_a_tenant_whose_schema_is_missing_raises(db: None) -> None:
    tenant_id = uuid.uuid4()
    ghost = TenantRef(
        id=tenant_id,
        schema_name=schema_name_for(tenant_id),
        subdomain="ghost",
        name="Ghost",
        status=Tenant.Status.ACTIVE,
    )
    with tenant_context(ghost), pytest.raises(TenantSchemaMissingError):
        User.objects.exists()


def test_dropped_schema_never_falls_back_to_public_users(db: None) -> None:
    # given: platform staff in public, and a tenant whose schema is gone
    with public_context():
        UserFactory(email="staff@platform.test")
        ghost = TenantFactory.create(name="Ghost", subdomain="ghost", status=Tenant.Status.ACTIVE)
        DomainFactory.create(domain="ghost.localhost", tenant=ghost)

    # when: someone signs in on the tenant's host with the staff member's credentials
    response = sign_in(Client(HTTP_HOST="ghost.localhost"), "staff@platform.test", TEST_PASSWORD)

    # then: the workspace is unavailable; the public users table was never consulted
    assert response.status_code == 503
    assert "sessionid" not in response.cookies


def test_schema_dropped_under_a_warm_connection_is_refused(tenant_a: Tenant, settings: Any) -> None:
    settings.TENANT_SCHEMA_RECHECK_SECONDS = 0  # the window has passed
    with tenant_context(tenant_a):
        assert User.objects.filter(email="owner@alpha.test").exists()  # path is warm
    with public_context():
        UserFactory(email="staff@platform.test")
        with connection.cursor() as cursor:  # rolled back with the test
            cursor.execute(f"DROP SCHEMA {quote(tenant_a.schema_name)} CASCADE")
    with tenant_context(tenant_a), pytest.raises(TenantSchemaMissingError):
        User.objects.filter(email="staff@platform.test").exists()


def test_each_thread_keeps_its_own_tenant(tenant_a: Tenant, tenant_b: Tenant) -> None:
    seen: dict[str, tuple[str | None, str]] = {}
    barrier = threading.Barrier(2)

    def work(tenant: Tenant) -> None:
        try:
            with tenant_context(tenant):
                barrier.wait(timeout=10)  # both threads are inside their tenant now
                with connection.cursor() as cursor:
                    cursor.execute("SELECT current_schema()")
                    schema = cursor.fetchone()[0]
                active = current_tenant()
                seen[tenant.subdomain] = (active.subdomain if active else None, schema)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(t,)) for t in (tenant_a, tenant_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {
        "alpha": ("alpha", tenant_a.schema_name),
        "beta": ("beta", tenant_b.schema_name),
    }


def test_each_asyncio_task_keeps_its_own_tenant(tenant_a: Tenant, tenant_b: Tenant) -> None:
    async def work(tenant: Tenant) -> list[str | None]:
        seen = []
        with tenant_context(tenant):
            for _ in range(3):
                await asyncio.sleep(0)  # let the other task run in between
                active = current_tenant()
                seen.append(active.subdomain if active else None)
        return seen

    async def both() -> list[list[str | None]]:
        return list(await asyncio.gather(work(tenant_a), work(tenant_b)))

    results: list[list[list[str | None]]] = []
    # A thread of its own: the event loop must not meet one another test left running.
    runner = threading.Thread(target=lambda: results.append(asyncio.run(both())))
    runner.start()
    runner.join()
    assert results == [[["alpha"] * 3, ["beta"] * 3]]


def test_connection_follows_context_even_if_moved_behind_its_back(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    with tenant_context(tenant_a):
        tenant_connection().set_schema(tenant_b.schema_name)  # a stray switch by a library
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            assert cursor.fetchone()[0] == tenant_a.schema_name


def test_schema_names_come_only_from_the_platform_pattern() -> None:
    assert schema_name_for(uuid.UUID(int=255)) == "t_000000000000000000000000000000ff"
    for hostile in ('acme"; DROP SCHEMA public CASCADE; --', "pg_catalog", "public2", "T_ABC"):
        with pytest.raises(ValueError, match="schema"):
            quote(hostile)
        with pytest.raises(ValueError, match="schema"):
            TenantRef(
                id=uuid.uuid4(),
                schema_name=hostile,
                subdomain="x",
                name="x",
                status=Tenant.Status.ACTIVE,
            )
