"""Members and invitations that add up: one live invitation per address, seats counted once,
resend and withdraw, and people removed earlier invited back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.billing.models import Plan
from shared_apps.tenants.addresses import LinkOrigin
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.members import services
from tenant_apps.members.errors import InvitationInvalidError
from tenant_apps.members.models import Invitation
from tests.factories import TEST_PASSWORD, InvitationFactory, UserFactory
from tests.fixtures import TENANT_A, browser_for

ORIGIN = LinkOrigin("http")
NEW_PASSWORD = "another-long-passphrase-42"


def _owner() -> User:
    return User.objects.get(email=TENANT_A.owner_email)


def _token_from_last_mail() -> str:
    link = next(word for word in mail.outbox[-1].body.split() if "token=" in word)
    return parse_qs(urlsplit(link).query)["token"][0]


def _invite(email: str, role: str = User.Role.MEMBER) -> Invitation:
    return services.invitation_send(actor=_owner(), email=email, role=role, origin=ORIGIN)


def test_a_new_invitation_replaces_the_old_one_for_the_same_address(
    in_tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = _invite("kim@alpha.test")
    first_token = _token_from_last_mail()
    with django_capture_on_commit_callbacks(execute=True):
        second = _invite("kim@alpha.test", role=User.Role.ADMIN)

    assert list(Invitation.objects.live().values_list("pk", flat=True)) == [second.pk]
    first.refresh_from_db()
    assert first.revoked_at is not None
    with pytest.raises(InvitationInvalidError, match="replaced by a newer one"):
        services.invitation_load(first_token)
    user = services.invitation_accept(token=_token_from_last_mail(), password=NEW_PASSWORD)
    assert user.role == User.Role.ADMIN


def test_seats_count_each_person_once_and_page_and_error_say_the_same(
    tenant_a: Tenant, owner_a: Client
) -> None:
    Plan.objects.filter(code="free").update(max_seats=4)
    with tenant_context(tenant_a):
        member = UserFactory.create(role=User.Role.MEMBER)
        InvitationFactory.create(email="pending@alpha.test")
        # An invitation left over for someone already in the workspace holds no seat.
        InvitationFactory.create(email=member.email)
        assert services.seats_taken() == 3  # the owner, the member, one pending invitation

    page = owner_a.get("/members/")
    assert b"3 of 4 seats in use" in page.content

    owner_a.post("/members/invite/", {"email": "fourth@alpha.test", "role": "member"})
    refused = owner_a.post("/members/invite/", {"email": "fifth@alpha.test", "role": "member"})
    assert refused.status_code == 400
    [error] = refused.context["form"].non_field_errors()
    assert "this workspace uses 4" in error
    assert b"4 of 4 seats in use" in refused.content
    with tenant_context(tenant_a):
        assert not Invitation.objects.filter(email="fifth@alpha.test").exists()


def test_open_invitations_are_listed_with_resend_and_withdraw(
    tenant_a: Tenant, owner_a: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create(
            email="sam@alpha.test", expires_at=timezone.now() + timedelta(days=1)
        )
        InvitationFactory.create(email="used@alpha.test", accepted_at=timezone.now())
    page = owner_a.get("/members/")
    assert [row.email for row in page.context["invitations"]] == ["sam@alpha.test"]
    assert f'action="/members/invitations/{invitation.pk}/resend/"'.encode() in page.content

    with django_capture_on_commit_callbacks(execute=True):
        resent = owner_a.post(f"/members/invitations/{invitation.pk}/resend/")
    assert (resent.status_code, resent["Location"]) == (302, "/members/")
    assert [message.to for message in mail.outbox] == [["sam@alpha.test"]]
    with tenant_context(tenant_a):
        invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)

    confirm = owner_a.get(f"/members/invitations/{invitation.pk}/revoke/")
    assert confirm.status_code == 200
    assert b"Withdraw the invitation" in confirm.content
    with tenant_context(tenant_a):
        assert Invitation.objects.live().filter(pk=invitation.pk).exists()  # asked, not done
    owner_a.post(f"/members/invitations/{invitation.pk}/revoke/")
    with tenant_context(tenant_a):
        assert not Invitation.objects.live().filter(pk=invitation.pk).exists()
        with pytest.raises(InvitationInvalidError):
            services.invitation_load(services.invitation_token(invitation))


def test_an_admin_cannot_withdraw_or_resend_an_owner_invitation(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        admin = UserFactory.create(role=User.Role.ADMIN)
        invitation = InvitationFactory.create(email="boss@alpha.test", role=User.Role.OWNER)
    client = browser_for(tenant_a, admin)

    page = client.get("/members/")
    assert b"Withdraw" not in page.content
    assert client.post(f"/members/invitations/{invitation.pk}/revoke/").status_code == 403
    assert client.post(f"/members/invitations/{invitation.pk}/resend/").status_code == 403
    with tenant_context(tenant_a):
        assert Invitation.objects.live().filter(pk=invitation.pk).exists()


def test_someone_removed_can_be_invited_back(
    in_tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    member = UserFactory.create(email="back@alpha.test", role=User.Role.ADMIN)
    services.member_remove(actor=_owner(), member=member)
    with django_capture_on_commit_callbacks(execute=True):
        _invite("back@alpha.test")

    returned = services.invitation_accept(token=_token_from_last_mail(), password=NEW_PASSWORD)

    assert returned.pk == member.pk
    assert (returned.is_active, returned.role, returned.is_staff) == (True, User.Role.MEMBER, False)
    assert returned.check_password(NEW_PASSWORD)
    assert not returned.check_password(TEST_PASSWORD)
