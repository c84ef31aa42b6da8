"""A tenant's users exist only in that tenant's schema."""

from __future__ import annotations

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tests.factories import UserFactory


def test_user_created_in_tenant_a_does_not_exist_in_b_or_public(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    with tenant_context(tenant_a):
        UserFactory(email="ann@example.test")
        assert User.objects.filter(email="ann@example.test").exists()

    with tenant_context(tenant_b):
        assert not User.objects.filter(email="ann@example.test").exists()
        assert list(User.objects.values_list("email", flat=True)) == ["owner@beta.test"]
    with public_context():
        assert not User.objects.filter(email="ann@example.test").exists()


def test_same_email_in_two_tenants_is_two_people(tenant_a: Tenant, tenant_b: Tenant) -> None:
    with tenant_context(tenant_a):
        UserFactory(email="sam@example.test", full_name="Sam of Alpha")
    with tenant_context(tenant_b):
        UserFactory(email="sam@example.test", full_name="Sam of Beta")
        assert User.objects.get(email="sam@example.test").full_name == "Sam of Beta"
    with tenant_context(tenant_a):
        assert User.objects.get(email="sam@example.test").full_name == "Sam of Alpha"


def test_changes_in_tenant_b_leave_tenant_a_untouched(tenant_a: Tenant, tenant_b: Tenant) -> None:
    with tenant_context(tenant_b):
        User.objects.all().update(full_name="changed in beta")
    with tenant_context(tenant_a):
        assert not User.objects.filter(full_name="changed in beta").exists()
