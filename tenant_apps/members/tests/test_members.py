"""Owners, admins, invitations: the workspace always keeps an owner, links stay in their tenant."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.addresses import LinkOrigin
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.members import services
from tenant_apps.members.errors import InvitationInvalidError, LastOwnerError
from tenant_apps.members.models import Invitation
from tests.factories import TEST_PASSWORD, UserFactory


def owner_of(tenant: Tenant) -> User:
    return User.objects.get(email=f"owner@{tenant.subdomain}.test")


def test_last_owner_cannot_be_demoted_or_removed(in_tenant_a: Tenant) -> None:
    owner = owner_of(in_tenant_a)
    with pytest.raises(LastOwnerError):
        services.member_role_change(actor=owner, member=owner, role=User.Role.ADMIN)
    with pytest.raises(LastOwnerError):
        services.member_remove(actor=owner, member=owner)
    owner.refresh_from_db()
    assert (owner.role, owner.is_active) == (User.Role.OWNER, True)


def test_an_owner_can_step_down_once_another_owner_exists(in_tenant_a: Tenant) -> None:
    owner = owner_of(in_tenant_a)
    second = UserFactory.create(email="second@alpha.test", role=User.Role.MEMBER)
    services.member_role_change(actor=owner, member=second, role=User.Role.OWNER)
    services.member_role_change(actor=owner, member=owner, role=User.Role.MEMBER)
    assert User.objects.filter(role=User.Role.OWNER).get() == second


def test_admin_cannot_touch_owners(in_tenant_a: Tenant) -> None:
    admin = UserFactory.create(email="admin@alpha.test", role=User.Role.ADMIN)
    owner = owner_of(in_tenant_a)
    with pytest.raises(PermissionDenied):
        services.member_role_change(actor=admin, member=owner, role=User.Role.MEMBER)
    with pytest.raises(PermissionDenied):
        services.member_remove(actor=admin, member=owner)


def invite(tenant: Tenant, email: str, capture: Any) -> str:
    with tenant_context(tenant), capture(execute=True):
        services.invitation_send(
            actor=owner_of(tenant), email=email, role=User.Role.MEMBER, origin=LinkOrigin("http")
        )
    link = re.search(r"http://\S+", str(mail.outbox[-1].body))
    assert link is not None
    return link.group(0)


def test_invitation_creates_the_user_in_its_tenant_only(
    tenant_a: Tenant, tenant_b: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    link = invite(tenant_a, "newbie@example.test", django_capture_on_commit_callbacks)
    path = link.split("localhost", 1)[1]
    token = parse_qs(urlsplit(link).query)["token"][0]
    browser = Client(HTTP_HOST="alpha.localhost")
    assert browser.get(path).status_code == 200
    response = browser.post("/invitations/accept/", {"token": token, "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert browser.get("/").status_code == 200  # signed in
    with tenant_context(tenant_a):
        assert User.objects.get(email="newbie@example.test").role == User.Role.MEMBER
    with tenant_context(tenant_b):
        assert not User.objects.filter(email="newbie@example.test").exists()

    # single use: the same link again is refused
    again = Client(HTTP_HOST="alpha.localhost").post(
        "/invitations/accept/", {"token": token, "password": TEST_PASSWORD}
    )
    assert again.status_code == 400
    assert b"already been used" in again.content


def test_invitation_of_a_is_refused_on_b(
    tenant_a: Tenant, tenant_b: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    link = invite(tenant_a, "wanderer@example.test", django_capture_on_commit_callbacks)
    path = link.split("localhost", 1)[1]
    response = Client(HTTP_HOST="beta.localhost").get(path)
    assert response.status_code == 400
    token = parse_qs(urlsplit(link).query)["token"][0]
    posted = Client(HTTP_HOST="beta.localhost").post(
        "/invitations/accept/", {"token": token, "password": TEST_PASSWORD}
    )
    assert posted.status_code == 400
    with tenant_context(tenant_b):
        assert not User.objects.filter(email="wanderer@example.test").exists()


def test_expired_invitation_is_refused(
    tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    from django.utils import timezone

    link = invite(tenant_a, "late@example.test", django_capture_on_commit_callbacks)
    with tenant_context(tenant_a):
        Invitation.objects.filter(email="late@example.test").update(expires_at=timezone.now())
        with pytest.raises(InvitationInvalidError, match="expired"):
            services.invitation_load(parse_qs(urlsplit(link).query)["token"][0])
