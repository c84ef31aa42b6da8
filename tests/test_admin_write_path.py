"""The admins are windows, not doors: every change goes through a service and the policy.

The workspace admin refuses its own forms (403, nothing changed); its actions call the
members services, ask before destroying, and report refusals as messages. The platform
admin suspends a tenant only with a reason, which the audit trail records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.billing.models import Plan, StripeEvent
from shared_apps.tenants.models import Domain, Tenant
from tenancy import public_context, tenant_context
from tenant_apps.members.models import Invitation
from tenant_apps.projects.models import Project
from tests.factories import (
    TEST_PASSWORD,
    InvitationFactory,
    ProjectFactory,
    StripeEventFactory,
    UserFactory,
)
from tests.test_admin import verified_client

HOST = "alpha.localhost"
OWNER_EMAIL = "owner@alpha.test"
ADMIN_EMAIL = "admin@alpha.test"
USERS = "/admin/accounts/user/"
INVITATIONS = "/admin/members/invitation/"
PROJECTS = "/admin/projects/project/"


@pytest.fixture
def admin_a(tenant_a: Tenant) -> Client:
    """Tenant A's browser, signed in with a second factor as a workspace admin."""
    with tenant_context(tenant_a):
        return verified_client(HOST, ADMIN_EMAIL, role=User.Role.ADMIN)


@pytest.fixture
def verified_owner_a(tenant_a: Tenant) -> Client:
    """Tenant A's browser, signed in with a second factor as its (only) owner."""
    with tenant_context(tenant_a):
        return verified_client(HOST, OWNER_EMAIL)


def in_a(tenant: Tenant, read: Callable[[], Any]) -> Any:
    with tenant_context(tenant):
        return read()


def user_row(tenant: Tenant, email: str) -> dict[str, Any]:
    """Everything the admin could have changed about a person."""
    with tenant_context(tenant):
        user = User.objects.get(email=email)
        return {
            "email": user.email,
            "password": user.password,
            "role": user.role,
            "is_active": user.is_active,
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
            "groups": list(user.groups.all()),
        }


def pk_of(tenant: Tenant, email: str) -> int:
    return int(in_a(tenant, lambda: User.objects.get(email=email).pk))


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def act(client: Client, changelist: str, action: str, *pks: int, confirm: bool = True) -> Any:
    data: dict[str, Any] = {"action": action, "_selected_action": [str(pk) for pk in pks]}
    if confirm:
        data["post"] = "yes"
    return client.post(changelist, data)


# FINDING 1: PEOPLE --------------------------------------------------------------------


def test_admin_cannot_set_the_owners_password(admin_a: Client, tenant_a: Tenant) -> None:
    before = user_row(tenant_a, OWNER_EMAIL)
    url = f"{USERS}{pk_of(tenant_a, OWNER_EMAIL)}/password/"

    assert admin_a.get(url).status_code == 403
    response = admin_a.post(
        url, {"password1": "a-new-password-42", "password2": "a-new-password-42"}
    )

    assert response.status_code == 403
    assert user_row(tenant_a, OWNER_EMAIL) == before


def test_owner_cannot_set_another_persons_password_either(
    verified_owner_a: Client, admin_a: Client, tenant_a: Tenant
) -> None:
    before = user_row(tenant_a, ADMIN_EMAIL)
    response = verified_owner_a.post(
        f"{USERS}{pk_of(tenant_a, ADMIN_EMAIL)}/password/",
        {"password1": "a-new-password-42", "password2": "a-new-password-42"},
    )
    assert response.status_code == 403
    assert user_row(tenant_a, ADMIN_EMAIL) == before


def change_form(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What the user change form would post, with `changes`; a missing checkbox means off."""
    data = {
        "email": row["email"],
        "full_name": "Changed Name",
        "role": row["role"],
        "is_staff": "on",
        "is_active": "on",
        "joined_at_0": "2024-01-01",
        "joined_at_1": "00:00:00",
        **changes,
    }
    return {key: value for key, value in data.items() if value is not None}


def test_admin_cannot_deactivate_the_only_owner(admin_a: Client, tenant_a: Tenant) -> None:
    before = user_row(tenant_a, OWNER_EMAIL)
    response = admin_a.post(
        f"{USERS}{pk_of(tenant_a, OWNER_EMAIL)}/change/", change_form(before, is_active=None)
    )
    assert response.status_code == 403
    assert user_row(tenant_a, OWNER_EMAIL) == before


def test_admin_cannot_make_itself_superuser(admin_a: Client, tenant_a: Tenant) -> None:
    before = user_row(tenant_a, ADMIN_EMAIL)
    response = admin_a.post(
        f"{USERS}{pk_of(tenant_a, ADMIN_EMAIL)}/change/",
        change_form(before, is_superuser="on", role=User.Role.OWNER),
    )
    assert response.status_code == 403
    assert user_row(tenant_a, ADMIN_EMAIL) == before


def test_people_pages_are_readable_without_password_or_superuser(
    admin_a: Client, tenant_a: Tenant
) -> None:
    listing = admin_a.get(USERS)
    assert listing.status_code == 200
    assert OWNER_EMAIL.encode() in listing.content

    page = admin_a.get(f"{USERS}{pk_of(tenant_a, OWNER_EMAIL)}/change/")
    assert page.status_code == 200
    assert b'name="is_active"' not in page.content
    assert b"Superuser status" not in page.content
    assert b"/password/" not in page.content
    assert b'type="submit" value="Save"' not in page.content


# FINDINGS 2 AND 3: INVITATIONS, ADDING ------------------------------------------------


def test_admin_cannot_turn_an_invitation_into_an_owners(admin_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create(email="newcomer@alpha.test")
    response = admin_a.post(
        f"{INVITATIONS}{invitation.pk}/change/",
        {
            "email": "newcomer@alpha.test",
            "role": User.Role.OWNER,
            "expires_at_0": "2099-01-01",
            "expires_at_1": "00:00:00",
        },
    )
    assert response.status_code == 403
    with tenant_context(tenant_a):
        assert Invitation.objects.get(pk=invitation.pk).role == User.Role.MEMBER


def test_admin_cannot_add_people_without_an_invitation(admin_a: Client, tenant_a: Tenant) -> None:
    people = in_a(tenant_a, User.objects.count)
    assert admin_a.get(f"{USERS}add/").status_code == 403
    response = admin_a.post(
        f"{USERS}add/",
        {
            "email": "uninvited@alpha.test",
            "password1": TEST_PASSWORD,
            "password2": TEST_PASSWORD,
            "role": User.Role.OWNER,
        },
    )
    assert response.status_code == 403
    assert in_a(tenant_a, User.objects.count) == people
    assert not in_a(tenant_a, User.objects.filter(email="uninvited@alpha.test").exists)


@pytest.mark.parametrize("at_the_limit", [False, True])
def test_admin_cannot_add_projects(admin_a: Client, tenant_a: Tenant, at_the_limit: bool) -> None:
    if at_the_limit:
        Plan.objects.filter(code="free").update(max_projects=1)
        in_a(tenant_a, lambda: ProjectFactory.create(name="Only one"))
    projects = in_a(tenant_a, Project.objects.count)

    assert admin_a.get(f"{PROJECTS}add/").status_code == 403
    response = admin_a.post(
        f"{PROJECTS}add/",
        {
            "name": "Past the limit",
            "status": Project.Status.ACTIVE,
            "tasks-TOTAL_FORMS": "0",
            "tasks-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 403
    assert in_a(tenant_a, Project.objects.count) == projects


def test_admin_cannot_edit_or_delete_projects(admin_a: Client, tenant_a: Tenant) -> None:
    project = in_a(tenant_a, lambda: ProjectFactory.create(name="Roadmap"))
    assert admin_a.get(f"{PROJECTS}{project.pk}/change/").status_code == 200

    renamed = admin_a.post(f"{PROJECTS}{project.pk}/change/", {"name": "Renamed"})
    deleted = admin_a.post(f"{PROJECTS}{project.pk}/delete/", {"post": "yes"})

    assert (renamed.status_code, deleted.status_code) == (403, 403)
    assert in_a(tenant_a, lambda: list(Project.objects.values_list("name", flat=True))) == [
        "Roadmap"
    ]


# ACTIONS: PEOPLE ----------------------------------------------------------------------


def test_removing_someone_asks_first_then_removes(
    verified_owner_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        member = UserFactory.create(email="leaving@alpha.test")

    asked = act(verified_owner_a, USERS, "remove", member.pk, confirm=False)

    assert asked.status_code == 200
    assert asked.templates[0].name == "admin/action_confirmation.html"
    assert b"Remove these people from the workspace?" in asked.content
    assert b"leaving@alpha.test" in asked.content
    assert user_row(tenant_a, "leaving@alpha.test")["is_active"] is True

    done = act(verified_owner_a, USERS, "remove", member.pk)

    assert done.status_code == 302
    assert messages_of(done) == ["Removed leaving@alpha.test from the workspace."]
    assert user_row(tenant_a, "leaving@alpha.test")["is_active"] is False


def test_admin_removing_the_owner_is_refused_with_a_message(
    admin_a: Client, tenant_a: Tenant
) -> None:
    before = user_row(tenant_a, OWNER_EMAIL)

    response = act(admin_a, USERS, "remove", pk_of(tenant_a, OWNER_EMAIL))

    assert response.status_code == 302
    assert messages_of(response) == [f"{OWNER_EMAIL}: your role does not allow this."]
    assert user_row(tenant_a, OWNER_EMAIL) == before


def test_the_last_owner_cannot_remove_themselves(
    verified_owner_a: Client, tenant_a: Tenant
) -> None:
    before = user_row(tenant_a, OWNER_EMAIL)

    response = act(verified_owner_a, USERS, "remove", pk_of(tenant_a, OWNER_EMAIL))

    assert response.status_code == 302
    assert messages_of(response) == [
        f"{OWNER_EMAIL}: The last owner cannot be removed; make someone else owner first."
    ]
    assert user_row(tenant_a, OWNER_EMAIL) == before


def devices_of(tenant: Tenant, email: str) -> int:
    return int(in_a(tenant, lambda: TOTPDevice.objects.filter(user__email=email).count()))


def test_owner_resets_a_second_factor_after_confirming(
    verified_owner_a: Client, admin_a: Client, tenant_a: Tenant
) -> None:
    admin_pk = pk_of(tenant_a, ADMIN_EMAIL)
    assert devices_of(tenant_a, ADMIN_EMAIL) == 1

    asked = act(verified_owner_a, USERS, "reset_second_factor", admin_pk, confirm=False)

    assert asked.status_code == 200
    assert b"Remove the second factor of these people?" in asked.content
    assert devices_of(tenant_a, ADMIN_EMAIL) == 1

    done = act(verified_owner_a, USERS, "reset_second_factor", admin_pk)

    assert done.status_code == 302
    assert messages_of(done) == [f"Reset the second factor of {ADMIN_EMAIL}."]
    assert devices_of(tenant_a, ADMIN_EMAIL) == 0
    with public_context():
        record = AuditRecord.objects.filter(action="member.second_factor_reset").latest(
            "created_at"
        )
    assert (record.actor, record.outcome) == (f"user:{OWNER_EMAIL}", AuditRecord.Outcome.SUCCEEDED)


def test_admin_resetting_the_owners_second_factor_is_refused(
    verified_owner_a: Client, admin_a: Client, tenant_a: Tenant
) -> None:
    response = act(admin_a, USERS, "reset_second_factor", pk_of(tenant_a, OWNER_EMAIL))

    assert response.status_code == 302
    assert messages_of(response) == [f"{OWNER_EMAIL}: your role does not allow this."]
    assert devices_of(tenant_a, OWNER_EMAIL) == 1


# ACTIONS: INVITATIONS -----------------------------------------------------------------


def test_revoking_an_invitation_asks_first_then_revokes(
    verified_owner_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create(email="maybe@alpha.test")

    asked = act(verified_owner_a, INVITATIONS, "revoke", invitation.pk, confirm=False)

    assert asked.status_code == 200
    assert b"Revoke these invitations?" in asked.content
    assert in_a(tenant_a, lambda: Invitation.objects.get(pk=invitation.pk).revoked_at) is None

    done = act(verified_owner_a, INVITATIONS, "revoke", invitation.pk)

    assert done.status_code == 302
    assert messages_of(done) == ["Revoked the invitation for maybe@alpha.test."]
    assert in_a(tenant_a, lambda: Invitation.objects.get(pk=invitation.pk).revoked_at) is not None


def test_admin_cannot_revoke_or_resend_an_owners_invitation(
    admin_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create(email="heir@alpha.test", role=User.Role.OWNER)
    expires_at = invitation.expires_at
    refusal = ["Invitation for heir@alpha.test (owner): your role does not allow this."]

    revoked = act(admin_a, INVITATIONS, "revoke", invitation.pk)
    assert messages_of(revoked) == refusal
    assert admin_a.get(INVITATIONS).status_code == 200  # the list shows (and spends) the message
    resent = act(admin_a, INVITATIONS, "resend", invitation.pk)
    assert messages_of(resent) == refusal

    with tenant_context(tenant_a):
        invitation.refresh_from_db()
    assert (invitation.revoked_at, invitation.expires_at) == (None, expires_at)


def test_resend_mails_the_invitation_again_with_a_fresh_week(
    verified_owner_a: Client,
    tenant_a: Tenant,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create(
            email="again@alpha.test", expires_at=timezone.now() + timedelta(days=1)
        )
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = act(verified_owner_a, INVITATIONS, "resend", invitation.pk, confirm=False)

    assert response.status_code == 302
    assert messages_of(response) == ["Sent the invitation for again@alpha.test again."]
    assert [message.to for message in mail.outbox] == [["again@alpha.test"]]
    assert "http://alpha.localhost/invitations/accept/?token=" in str(mail.outbox[0].body)
    with tenant_context(tenant_a):
        invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)


def test_resending_a_revoked_invitation_is_an_error_message(
    verified_owner_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create(email="gone@alpha.test", revoked_at=timezone.now())
    expires_at = invitation.expires_at

    response = act(verified_owner_a, INVITATIONS, "resend", invitation.pk)

    assert response.status_code == 302
    assert messages_of(response) == [
        "Invitation for gone@alpha.test (member): This invitation is no longer open."
    ]
    with tenant_context(tenant_a):
        invitation.refresh_from_db()
    assert invitation.expires_at == expires_at


# FINDING 4: MEMBERS -------------------------------------------------------------------


ROLE_NEEDED = b"An owner or admin role is needed to open the workspace admin."


@pytest.mark.parametrize("with_second_factor", [True, False])
def test_member_sees_a_refusal_page_instead_of_a_redirect_loop(
    tenant_a: Tenant, with_second_factor: bool
) -> None:
    with tenant_context(tenant_a):
        if with_second_factor:
            member = verified_client(HOST, "plain@alpha.test", role=User.Role.MEMBER)
        else:
            member = Client(HTTP_HOST=HOST)
            member.force_login(UserFactory.create(email="plain@alpha.test"))

    response = member.get("/admin/")

    assert response.status_code == 403
    assert ROLE_NEEDED in response.content
    assert b'href="/projects/"' in response.content  # the workspace's own layout
    for path in (PROJECTS, f"{USERS}{pk_of(tenant_a, OWNER_EMAIL)}/password/", "/admin/login/"):
        deeper = member.get(path)
        assert (deeper.status_code, ROLE_NEEDED in deeper.content) == (403, True)


# FINDING 5 AND THE PLATFORM ADMIN -----------------------------------------------------


@pytest.fixture
def platform_staff(db: None) -> Client:
    with public_context():
        UserFactory.create(email="ops@platform.test", is_staff=True, is_superuser=True)
        return verified_client("localhost", "ops@platform.test")


TENANTS = f"/{settings.ADMIN_URL}tenants/tenant/"


def status_of(tenant: Tenant) -> str:
    with public_context():
        return str(Tenant.objects.get(pk=tenant.pk).status)


def suspensions() -> int:
    with public_context():
        return AuditRecord.objects.filter(action="tenant.suspend").count()


def test_suspend_asks_for_a_reason_and_refuses_an_empty_one(
    platform_staff: Client, tenant_a: Tenant
) -> None:
    asked = platform_staff.post(TENANTS, {"action": "suspend", "_selected_action": [tenant_a.pk]})
    assert asked.status_code == 200
    assert asked.templates[0].name == "admin/tenants/tenant/suspend_confirmation.html"
    assert asked.context["form"].errors == {}

    for reason in ("", "   "):
        again = platform_staff.post(
            TENANTS,
            {
                "action": "suspend",
                "_selected_action": [tenant_a.pk],
                "post": "yes",
                "reason": reason,
            },
        )
        assert again.status_code == 200
        assert again.context["form"].errors == {"reason": ["This field is required."]}
    assert status_of(tenant_a) == Tenant.Status.ACTIVE
    assert suspensions() == 0


def test_suspend_with_a_reason_records_it_in_the_audit_trail(
    platform_staff: Client, tenant_a: Tenant
) -> None:
    response = platform_staff.post(
        TENANTS,
        {
            "action": "suspend",
            "_selected_action": [tenant_a.pk],
            "post": "yes",
            "reason": "Chargeback on invoice 1042",
        },
    )

    assert response.status_code == 302
    assert messages_of(response) == ["Suspended alpha."]
    assert status_of(tenant_a) == Tenant.Status.SUSPENDED
    with public_context():
        record = AuditRecord.objects.get(action="tenant.suspend")
    assert (record.actor, record.subdomain, record.outcome, record.detail["reason"]) == (
        "admin:ops@platform.test",
        "alpha",
        AuditRecord.Outcome.SUCCEEDED,
        "Chargeback on invoice 1042",
    )


def test_tenants_and_domains_are_read_only(platform_staff: Client, tenant_a: Tenant) -> None:
    with public_context():
        domain = Domain.objects.get(tenant=tenant_a, is_primary=True)
    base = f"/{settings.ADMIN_URL}tenants/"

    assert platform_staff.get(f"{base}tenant/{tenant_a.pk}/change/").status_code == 200
    renamed = platform_staff.post(f"{base}tenant/{tenant_a.pk}/change/", {"name": "Taken Over"})
    moved = platform_staff.post(
        f"{base}domain/{domain.pk}/change/",
        {"domain": "evil.localhost", "tenant": tenant_a.pk, "is_primary": "on"},
    )
    added = platform_staff.post(f"{base}domain/add/", {"domain": "x.localhost"})

    assert (renamed.status_code, moved.status_code, added.status_code) == (403, 403, 403)
    with public_context():
        assert Tenant.objects.get(pk=tenant_a.pk).name == "Alpha Inc"
        assert Domain.objects.get(pk=domain.pk).domain == "alpha.localhost"
        assert not Domain.objects.filter(domain="x.localhost").exists()


def test_billing_copies_are_read_only_and_plans_stay_editable(platform_staff: Client) -> None:
    with public_context():
        event = StripeEventFactory.create()
    base = f"/{settings.ADMIN_URL}billing/"

    deleted = platform_staff.post(f"{base}stripeevent/{event.pk}/delete/", {"post": "yes"})
    added = platform_staff.get(f"{base}billingaccount/add/")
    plan_form = platform_staff.get(f"{base}plan/add/")

    assert (deleted.status_code, added.status_code, plan_form.status_code) == (403, 403, 200)
    with public_context():
        assert StripeEvent.objects.filter(pk=event.pk).exists()
