"""Connections that served many tenants are recycled between requests and tasks."""

from __future__ import annotations

from typing import Any

from django.test import Client

from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenancy.db import recycle_swollen_connections, tenant_connection


def _touch(tenant: Tenant) -> None:
    from tenant_apps.projects.models import Project

    with tenant_context(tenant):
        Project.objects.exists()


def test_a_connection_is_closed_once_it_served_the_limit_of_tenants(
    committed: tuple[Tenant, Tenant], settings: Any
) -> None:
    alpha, beta = committed
    settings.TENANT_CONNECTION_MAX_SCHEMAS = 2
    connection = tenant_connection()
    connection.close()

    _touch(alpha)
    recycle_swollen_connections()
    assert connection.connection is not None  # one tenant: kept
    assert connection.schemas_served() == 1

    _touch(beta)
    recycle_swollen_connections()
    assert connection.connection is None  # two: closed, the next query opens a fresh one
    _touch(alpha)
    assert connection.schemas_served() == 1


def test_the_end_of_a_request_recycles_a_swollen_connection(
    committed: tuple[Tenant, Tenant], settings: Any
) -> None:  # the session tenants alpha and beta, committed
    settings.TENANT_CONNECTION_MAX_SCHEMAS = 2
    tenant_connection().close()
    # A sign-in attempt reads the tenant's users: a query per tenant.
    attempt = {"login_view-current_step": "auth", "auth-username": "x@y.test", "auth-password": "x"}
    assert Client(HTTP_HOST="alpha.localhost").post("/login/", attempt).status_code == 200
    assert tenant_connection().connection is not None
    assert Client(HTTP_HOST="beta.localhost").post("/login/", attempt).status_code == 200
    assert tenant_connection().connection is None
