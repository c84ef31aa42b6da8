"""The workspace home keeps the same number of queries however much the workspace holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tests.factories import ProjectFactory, TaskFactory, UserFactory
from tests.fixtures import TENANT_A


@pytest.mark.parametrize("rows", [1, 10])
def test_home_queries_do_not_grow(
    owner_a: Client, tenant_a: Tenant, rows: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    with tenant_context(tenant_a):
        UserFactory.create_batch(rows)
        for project in ProjectFactory.create_batch(rows):
            TaskFactory.create(project=project)
    owner_a.get("/")  # warm: the first visit creates the workspace settings row

    with django_assert_num_queries(4):  # search path, session, user, workspace settings
        response = owner_a.get("/")

    assert response.status_code == 200
    assert response.context["user"].email == TENANT_A.owner_email
