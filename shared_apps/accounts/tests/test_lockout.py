"""Repeated failed sign-ins lock out that e-mail from that address, in that workspace only."""

from __future__ import annotations

from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tests.factories import TEST_PASSWORD, UserFactory
from tests.fixtures import sign_in


def test_five_failures_lock_out_that_email_and_ip(tenant_a: Tenant, tenant_b: Tenant) -> None:
    with tenant_context(tenant_b):
        # the same e-mail, another person in B
        UserFactory.create(email="owner@alpha.test", role=User.Role.MEMBER)
    attacker = Client(HTTP_HOST="alpha.localhost", REMOTE_ADDR="203.0.113.7")
    for _ in range(4):
        response = sign_in(attacker, "owner@alpha.test", "wrong password")
        assert response.status_code == 200  # the form again, with its error
    assert sign_in(attacker, "owner@alpha.test", "wrong password").status_code == 429  # fifth

    locked = sign_in(attacker, "owner@alpha.test", TEST_PASSWORD)  # even the right password
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content

    elsewhere = Client(HTTP_HOST="alpha.localhost", REMOTE_ADDR="198.51.100.4")
    assert sign_in(elsewhere, "owner@alpha.test", TEST_PASSWORD).status_code == 302
    in_b = Client(HTTP_HOST="beta.localhost", REMOTE_ADDR="203.0.113.7")
    assert sign_in(in_b, "owner@alpha.test", TEST_PASSWORD).status_code == 302
