"""The members page keeps the same number of queries however many people it lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tests.factories import InvitationFactory, UserFactory


@pytest.mark.parametrize("rows", [1, 10])
def test_member_list_queries_do_not_grow(
    owner_a: Client, tenant_a: Tenant, rows: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    with tenant_context(tenant_a):
        UserFactory.create_batch(rows, role=User.Role.MEMBER)
        UserFactory.create_batch(rows, role=User.Role.ADMIN)
        InvitationFactory.create_batch(rows)
    owner_a.get("/members/")  # warm: the host's route is cached after this

    # search path, session, user, the active members, the open invitations, the seats in use
    # (people, then invitations for others), the workspace's plan
    with django_assert_num_queries(8):
        response = owner_a.get("/members/")

    assert response.status_code == 200
    assert len(response.context["members"]) == 1 + 2 * rows  # the owner too
    assert len(response.context["invitations"]) == rows
    assert response.context["seats"].taken == 1 + 3 * rows
