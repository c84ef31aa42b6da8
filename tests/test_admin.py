"""Both admins open only with a verified second factor, and show only their own data."""

from __future__ import annotations

from django.conf import settings
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tests.factories import (
    TEST_PASSWORD,
    ProjectFactory,
    UserFactory,
    totp_code,
    totp_device_for,
)
from tests.fixtures import sign_in


def verified_client(host: str, email: str, role: User.Role | None = None) -> Client:
    """A browser whose person has an authenticator app and signed in with its code."""
    user = (
        User.objects.get(email=email)
        if role is None
        else UserFactory.create(email=email, role=role)
    )
    device = totp_device_for(user)
    client = Client(HTTP_HOST=host)
    response = sign_in(client, email, TEST_PASSWORD, token=totp_code(device))
    assert response.status_code == 302, "the code was accepted"
    return client


def test_tenant_admin_sends_staff_without_a_device_to_enroll(
    client_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        client_a.force_login(User.objects.get(email="owner@alpha.test"))
    response = client_a.get("/admin/", follow=True)
    # Enrolment starts with the gate: the password again and a code by e-mail.
    assert [url for url, _ in response.redirect_chain][-2:] == [
        "/account/two_factor/setup/",
        "/account/two_factor/setup/confirm/",
    ]
    assert b"Workspace administration" not in response.content


def test_wrong_code_is_refused(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        totp_device_for(User.objects.get(email="owner@alpha.test"))
    client = Client(HTTP_HOST="alpha.localhost")
    response = sign_in(client, "owner@alpha.test", TEST_PASSWORD, token="000000")
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_tenant_admin_shows_only_its_own_tenant(tenant_a: Tenant, tenant_b: Tenant) -> None:
    with tenant_context(tenant_a):
        alpha_project = ProjectFactory.create(name="Alpha Confidential")
    with tenant_context(tenant_b):
        ProjectFactory.create(name="Beta Roadmap")
        admin_b = verified_client("beta.localhost", "owner@beta.test")

    index = admin_b.get("/admin/")
    assert index.status_code == 200
    assert b"Workspace administration" in index.content
    listing = admin_b.get("/admin/projects/project/")
    assert b"Beta Roadmap" in listing.content
    assert b"Alpha Confidential" not in listing.content
    change = admin_b.get(f"/admin/projects/project/{alpha_project.pk}/change/", follow=True)
    assert b"Alpha Confidential" not in change.content


def test_member_role_cannot_enter_the_tenant_admin(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        member = verified_client("alpha.localhost", "plain@alpha.test", role=User.Role.MEMBER)
    response = member.get("/admin/")
    assert response.status_code == 403
    assert b"Workspace administration" not in response.content


def test_platform_admin_suspends_and_resumes_through_the_audited_service(
    tenant_a: Tenant,
) -> None:
    with public_context():
        UserFactory.create(email="ops@platform.test", is_staff=True, is_superuser=True)
        admin = verified_client("localhost", "ops@platform.test")
    base = f"/{settings.ADMIN_URL}tenants/tenant/"
    assert admin.get(base).status_code == 200

    for action, status in (("suspend", Tenant.Status.SUSPENDED), ("resume", Tenant.Status.ACTIVE)):
        # Suspending asks for a reason on a page of its own; this is that page's answer.
        response = admin.post(
            base,
            {
                "action": action,
                "_selected_action": [str(tenant_a.pk)],
                "post": "yes",
                "reason": "Unpaid invoices",
            },
        )
        assert response.status_code == 302
        with public_context():
            assert Tenant.objects.get(pk=tenant_a.pk).status == status
            record = AuditRecord.objects.filter(action=f"tenant.{action}").latest("created_at")
        assert (record.actor, record.subdomain, record.outcome) == (
            "admin:ops@platform.test",
            "alpha",
            AuditRecord.Outcome.SUCCEEDED,
        )


def test_platform_admin_requires_a_second_factor(db: None) -> None:
    with public_context():
        UserFactory.create(email="ops2@platform.test", is_staff=True)
    client = Client(HTTP_HOST="localhost")
    assert sign_in(client, "ops2@platform.test", TEST_PASSWORD).status_code == 302
    response = client.get(f"/{settings.ADMIN_URL}", follow=True)
    assert [url for url, _ in response.redirect_chain][-2:] == [
        "/account/two_factor/setup/",
        "/account/two_factor/setup/confirm/",
    ]
