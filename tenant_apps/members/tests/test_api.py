"""The members API: people and invitations by the members page's rules, no secrets, the
`admin` scope for keys that change people, one tenant's rows only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.billing.models import Plan
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.apikeys.tests.helpers import bearer, key_in
from tenant_apps.members.models import Invitation
from tests.api import assert_problem, field_errors, patch_json, post_json, signed_in_as
from tests.factories import InvitationFactory, UserFactory, totp_device_for
from tests.fixtures import TENANT_A, TENANT_B

MEMBER_FIELDS = {"id", "email", "full_name", "role", "joined_at", "has_two_factor"}
INVITATION_FIELDS = {"id", "email", "role", "invited_by", "created_at", "expires_at"}


def owner_of_a() -> User:
    return User.objects.get(email=TENANT_A.owner_email)


def person_in(tenant: Tenant, *, unknown_in: Tenant, **fields: Any) -> User:
    """A new person of `tenant` whose id no active person of `unknown_in` has: each schema
    numbers its own people, and user 5 of one workspace is someone else in another."""
    with tenant_context(unknown_in):
        taken = set(User.objects.filter(is_active=True).values_list("pk", flat=True))
    with tenant_context(tenant):
        person = UserFactory.create(**fields)
        while person.pk in taken:
            person = UserFactory.create(**fields)
    return person


def machine_on(host: str, plaintext: str) -> tuple[Client, dict[str, str]]:
    """A client without a session, sending an API key."""
    return Client(HTTP_HOST=host), bearer(plaintext)


# MEMBERS --------------------------------------------------------------------------------


def successes(responses: dict[str, object]) -> list[str]:
    """The success statuses an operation documents (its problem answers aside)."""
    return [status for status in responses if status.startswith("2")]


def test_member_list_shows_who_people_are_and_nothing_secret(
    owner_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        guarded = UserFactory.create(email="guarded@alpha.test", full_name="Gia Guarded")
        totp_device_for(guarded)
        owner = owner_of_a()

    rows = owner_a.get("/api/v1/members").json()["results"]

    assert [row["id"] for row in rows] == [owner.pk, guarded.pk]  # by id
    assert all(set(row) == MEMBER_FIELDS for row in rows)
    assert rows[1] == {
        "id": guarded.pk,
        "email": "guarded@alpha.test",
        "full_name": "Gia Guarded",
        "role": "member",
        "joined_at": rows[1]["joined_at"],
        "has_two_factor": True,
    }
    assert rows[0]["has_two_factor"] is False


def test_a_member_reads_people_but_not_who_has_a_second_factor(tenant_a: Tenant) -> None:
    member, person = signed_in_as(tenant_a, User.Role.MEMBER)
    with tenant_context(tenant_a):
        totp_device_for(person)

    rows = member.get("/api/v1/members").json()["results"]
    detail = member.get(f"/api/v1/members/{person.pk}").json()

    assert len(rows) == 2
    assert {row["has_two_factor"] for row in rows} == {None}
    assert (detail["email"], detail["has_two_factor"]) == (person.email, None)


def test_member_list_filters_by_role(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        admin = UserFactory.create(role=User.Role.ADMIN)
        UserFactory.create(role=User.Role.MEMBER)
        UserFactory.create(role=User.Role.ADMIN, is_active=False)  # removed earlier

    rows = owner_a.get("/api/v1/members?role=admin").json()["results"]

    assert [row["id"] for row in rows] == [admin.pk]


def test_an_unknown_role_filter_is_a_validation_problem(owner_a: Client) -> None:
    body = assert_problem(owner_a.get("/api/v1/members?role=king"), 400, "validation_failed")
    assert field_errors(body) == [("role", "invalid_choice")]


@pytest.mark.parametrize("member_id", ["999999", "99999999999999999999"])
def test_a_missing_member_is_a_404_problem(owner_a: Client, member_id: str) -> None:
    assert_problem(owner_a.get(f"/api/v1/members/{member_id}"), 404, "member_not_found")


def test_someone_removed_is_no_longer_a_member(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        gone = UserFactory.create(is_active=False)
    assert_problem(owner_a.get(f"/api/v1/members/{gone.pk}"), 404, "member_not_found")


def test_patch_changes_a_role(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        person = UserFactory.create(role=User.Role.MEMBER)

    response = patch_json(owner_a, f"/api/v1/members/{person.pk}", {"role": "admin"})

    assert response.status_code == 200, response.content
    assert (response.json()["role"], response.json()["has_two_factor"]) == ("admin", False)
    with tenant_context(tenant_a):
        person.refresh_from_db()
    assert (person.role, person.is_staff) == (User.Role.ADMIN, True)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"role": "king"}, "role", "invalid_choice"),
        ({"role": None}, "role", "null"),
        ({"role": "admin", "email": "x@alpha.test"}, "email", "unknown_field"),
    ],
)
def test_patch_input_is_checked(
    owner_a: Client, tenant_a: Tenant, body: dict[str, Any], field: str, code: str
) -> None:
    with tenant_context(tenant_a):
        person = UserFactory.create(role=User.Role.MEMBER)

    response = patch_json(owner_a, f"/api/v1/members/{person.pk}", body)

    assert field_errors(assert_problem(response, 400, "validation_failed")) == [(field, code)]
    with tenant_context(tenant_a):
        person.refresh_from_db()
    assert (person.role, person.email) == (User.Role.MEMBER, person.email)


def test_a_member_cannot_change_roles_or_remove_anyone(tenant_a: Tenant) -> None:
    member, _ = signed_in_as(tenant_a, User.Role.MEMBER)
    with tenant_context(tenant_a):
        other = UserFactory.create(role=User.Role.MEMBER)
    path = f"/api/v1/members/{other.pk}"

    assert_problem(patch_json(member, path, {"role": "admin"}), 403, "permission_denied")
    assert_problem(patch_json(member, path, {}), 403, "permission_denied")
    assert_problem(member.delete(path), 403, "permission_denied")
    with tenant_context(tenant_a):
        other.refresh_from_db()
    assert (other.role, other.is_active) == (User.Role.MEMBER, True)


def test_patch_without_fields_changes_nothing(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        person = UserFactory.create(role=User.Role.ADMIN)

    response = patch_json(owner_a, f"/api/v1/members/{person.pk}", {})

    assert (response.status_code, response.json()["role"]) == (200, "admin")


def test_an_admin_neither_touches_owners_nor_makes_them(tenant_a: Tenant) -> None:
    admin, _ = signed_in_as(tenant_a, User.Role.ADMIN)
    with tenant_context(tenant_a):
        owner, member = owner_of_a(), UserFactory.create(role=User.Role.MEMBER)

    demote = patch_json(admin, f"/api/v1/members/{owner.pk}", {"role": "member"})
    remove = admin.delete(f"/api/v1/members/{owner.pk}")
    promote = patch_json(admin, f"/api/v1/members/{member.pk}", {"role": "owner"})

    assert_problem(demote, 403, "permission_denied")
    assert_problem(remove, 403, "permission_denied")
    body = assert_problem(promote, 403, "role_not_allowed")
    assert field_errors(body) == [("role", "role_not_allowed")]
    with tenant_context(tenant_a):
        assert list(User.objects.filter(role=User.Role.OWNER, is_active=True)) == [owner]


def test_the_last_owner_stays(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        owner = owner_of_a()

    demote = patch_json(owner_a, f"/api/v1/members/{owner.pk}", {"role": "admin"})
    remove = owner_a.delete(f"/api/v1/members/{owner.pk}")

    assert_problem(demote, 409, "last_owner")
    assert_problem(remove, 409, "last_owner")
    with tenant_context(tenant_a):
        owner.refresh_from_db()
    assert (owner.role, owner.is_active) == (User.Role.OWNER, True)


def test_delete_removes_someone_and_keeps_their_account(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        person = UserFactory.create(role=User.Role.ADMIN)

    response = owner_a.delete(f"/api/v1/members/{person.pk}")

    assert (response.status_code, response.content) == (204, b"")
    assert_problem(owner_a.get(f"/api/v1/members/{person.pk}"), 404, "member_not_found")
    with tenant_context(tenant_a):
        person.refresh_from_db()
    assert person.is_active is False


def test_keys_need_the_admin_scope_to_change_people(client_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        person = UserFactory.create(role=User.Role.MEMBER)
    _, read = key_in(tenant_a, scopes=["read"])
    _, write = key_in(tenant_a, scopes=["write"])
    _, admin = key_in(tenant_a, scopes=["admin"])
    path = f"/api/v1/members/{person.pk}"

    assert client_a.get(path, headers=bearer(read)).status_code == 200
    refused = patch_json(client_a, path, {"role": "admin"}, headers=bearer(write))
    assert_problem(refused, 403, "permission_denied")
    assert_problem(client_a.delete(path, headers=bearer(write)), 403, "permission_denied")
    with tenant_context(tenant_a):
        person.refresh_from_db()
    assert (person.role, person.is_active) == (User.Role.MEMBER, True)
    allowed = patch_json(client_a, path, {"role": "admin"}, headers=bearer(admin))
    assert (allowed.status_code, allowed.json()["role"]) == (200, "admin")
    assert client_a.delete(path, headers=bearer(admin)).status_code == 204


def test_tenant_b_never_reaches_tenant_a_people(
    owner_b: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    person = person_in(tenant_a, unknown_in=tenant_b, role=User.Role.MEMBER)
    path = f"/api/v1/members/{person.pk}"
    _, key_of_a = key_in(tenant_a, scopes=["admin"])

    listed = owner_b.get("/api/v1/members").json()["results"]
    assert [row["email"] for row in listed] == [TENANT_B.owner_email]
    assert_problem(owner_b.get(path), 404, "member_not_found")
    assert_problem(patch_json(owner_b, path, {"role": "admin"}), 404, "member_not_found")
    assert_problem(owner_b.delete(path), 404, "member_not_found")
    machine, headers = machine_on(TENANT_B.host, key_of_a)
    assert_problem(machine.get("/api/v1/members", headers=headers), 401, "authentication_failed")
    with tenant_context(tenant_a):
        person.refresh_from_db()
    assert (person.role, person.is_active) == (User.Role.MEMBER, True)


@pytest.mark.parametrize("rows", [1, 50])
def test_member_list_queries_do_not_grow(
    owner_a: Client, tenant_a: Tenant, rows: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    with tenant_context(tenant_a):
        for person in UserFactory.create_batch(rows):
            totp_device_for(person)
    owner_a.get("/api/v1/members")  # warm: the host's route is cached after this

    # search path, session, user, one page of people with their second factors
    with django_assert_num_queries(4):
        response = owner_a.get("/api/v1/members?page_size=100")

    assert len(response.json()["results"]) == rows + 1  # the owner too


# INVITATIONS ----------------------------------------------------------------------------


def test_invitation_list_shows_open_invitations_without_their_links(
    owner_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        owner = owner_of_a()
        open_one = InvitationFactory.create(email="sam@alpha.test", invited_by=owner)
        InvitationFactory.create(accepted_at=timezone.now())
        InvitationFactory.create(revoked_at=timezone.now())
        InvitationFactory.create(expires_at=timezone.now() - timedelta(minutes=1))

    rows = owner_a.get("/api/v1/invitations").json()["results"]

    assert rows == [
        {
            "id": open_one.pk,
            "email": "sam@alpha.test",
            "role": "member",
            "invited_by": owner.pk,
            "created_at": rows[0]["created_at"],
            "expires_at": rows[0]["expires_at"],
        }
    ]


def test_send_invitation_answers_201_and_mails_the_link(
    owner_a: Client, tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(owner_a, "/api/v1/invitations", {"email": " Kim@Alpha.test "})

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == INVITATION_FIELDS
    assert (body["email"], body["role"]) == ("kim@alpha.test", "member")
    with tenant_context(tenant_a):
        invitation = Invitation.objects.live().get()
    assert invitation.pk == body["id"]
    [message] = mail.outbox
    assert message.to == ["kim@alpha.test"]
    assert f"http://{TENANT_A.host}/invitations/accept/?token=" in message.body


def test_an_admin_invites_admins_but_not_owners(tenant_a: Tenant) -> None:
    admin, _ = signed_in_as(tenant_a, User.Role.ADMIN)

    made = post_json(admin, "/api/v1/invitations", {"email": "a@alpha.test", "role": "admin"})
    refused = post_json(admin, "/api/v1/invitations", {"email": "o@alpha.test", "role": "owner"})

    assert (made.status_code, made.json()["role"]) == (201, "admin")
    assert field_errors(assert_problem(refused, 403, "role_not_allowed")) == [
        ("role", "role_not_allowed")
    ]
    with tenant_context(tenant_a):
        assert list(Invitation.objects.values_list("email", flat=True)) == ["a@alpha.test"]


def test_a_member_neither_lists_nor_sends_invitations(tenant_a: Tenant) -> None:
    member, _ = signed_in_as(tenant_a, User.Role.MEMBER)
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create()

    assert_problem(member.get("/api/v1/invitations"), 403, "permission_denied")
    assert_problem(member.get(f"/api/v1/invitations/{invitation.pk}"), 403, "permission_denied")
    refused = post_json(member, "/api/v1/invitations", {"email": "friend@alpha.test"})
    assert_problem(refused, 403, "permission_denied")
    with tenant_context(tenant_a):
        assert list(Invitation.objects.all()) == [invitation]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "email", "required"),
        ({"email": "not-an-address"}, "email", "invalid"),
        ({"email": "a@alpha.test", "role": "king"}, "role", "invalid_choice"),
        ({"email": "a@alpha.test", "message": "hi"}, "message", "unknown_field"),
    ],
)
def test_invitation_input_is_checked(
    owner_a: Client, tenant_a: Tenant, body: dict[str, Any], field: str, code: str
) -> None:
    response = post_json(owner_a, "/api/v1/invitations", body)

    assert field_errors(assert_problem(response, 400, "validation_failed")) == [(field, code)]
    with tenant_context(tenant_a):
        assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_inviting_a_member_is_a_conflict(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        UserFactory.create(email="here@alpha.test")

    response = post_json(owner_a, "/api/v1/invitations", {"email": "HERE@alpha.test"})

    assert field_errors(assert_problem(response, 409, "already_member")) == [
        ("email", "already_member")
    ]


def test_invitations_respect_the_plans_seats(owner_a: Client, tenant_a: Tenant) -> None:
    Plan.objects.filter(code="free").update(max_seats=2)
    with tenant_context(tenant_a):
        InvitationFactory.create()  # the owner and this invitation: two seats

    response = post_json(owner_a, "/api/v1/invitations", {"email": "third@alpha.test"})

    body = assert_problem(response, 403, "plan_limit_reached")
    assert "this workspace uses 2" in body["detail"]
    with tenant_context(tenant_a):
        assert not Invitation.objects.filter(email="third@alpha.test").exists()


def test_invitations_are_rate_limited_like_the_page(
    owner_a: Client, tenant_a: Tenant, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "invitation": {"actor": "2/h"}}

    for n in range(2):
        made = post_json(owner_a, "/api/v1/invitations", {"email": f"p{n}@alpha.test"})
        assert made.status_code == 201
    refused = post_json(owner_a, "/api/v1/invitations", {"email": "p3@alpha.test"})

    assert_problem(refused, 429, "throttled")
    assert int(refused["Retry-After"]) > 0
    with tenant_context(tenant_a):
        assert Invitation.objects.count() == 2


def test_invitation_detail_and_a_closed_one_is_not_found(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        open_one = InvitationFactory.create()
        used = InvitationFactory.create(accepted_at=timezone.now())

    detail = owner_a.get(f"/api/v1/invitations/{open_one.pk}")

    assert (detail.status_code, detail.json()["email"]) == (200, open_one.email)
    assert_problem(owner_a.get(f"/api/v1/invitations/{used.pk}"), 404, "invitation_not_found")


def test_delete_withdraws_an_invitation(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create()
    path = f"/api/v1/invitations/{invitation.pk}"

    response = owner_a.delete(path)

    assert (response.status_code, response.content) == (204, b"")
    with tenant_context(tenant_a):
        invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert_problem(owner_a.delete(path), 404, "invitation_not_found")


def test_resend_mails_the_invitation_again_with_a_fresh_week(
    owner_a: Client, tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create(expires_at=timezone.now() + timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(owner_a, f"/api/v1/invitations/{invitation.pk}/resend", {})

    assert response.status_code == 200, response.content
    assert [message.to for message in mail.outbox] == [[invitation.email]]
    with tenant_context(tenant_a):
        invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    assert response.json()["id"] == invitation.pk


def test_resend_refuses_fields(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create()

    response = post_json(owner_a, f"/api/v1/invitations/{invitation.pk}/resend", {"role": "x"})

    assert field_errors(assert_problem(response, 400, "validation_failed")) == [
        ("role", "unknown_field")
    ]
    assert mail.outbox == []


def test_an_admin_cannot_withdraw_or_resend_an_owner_invitation(tenant_a: Tenant) -> None:
    admin, _ = signed_in_as(tenant_a, User.Role.ADMIN)
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create(role=User.Role.OWNER)
    path = f"/api/v1/invitations/{invitation.pk}"

    assert_problem(admin.delete(path), 403, "permission_denied")
    assert_problem(post_json(admin, f"{path}/resend", {}), 403, "permission_denied")
    with tenant_context(tenant_a):
        assert Invitation.objects.live().filter(pk=invitation.pk).exists()
    assert mail.outbox == []


def test_keys_need_the_admin_scope_to_invite(client_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create()
    _, read = key_in(tenant_a, scopes=["read"])
    _, write = key_in(tenant_a, scopes=["write"])
    _, admin = key_in(tenant_a, scopes=["admin"])
    one = f"/api/v1/invitations/{invitation.pk}"

    assert client_a.get("/api/v1/invitations", headers=bearer(read)).status_code == 200
    for refused in (
        post_json(
            client_a, "/api/v1/invitations", {"email": "k@alpha.test"}, headers=bearer(write)
        ),
        post_json(client_a, f"{one}/resend", {}, headers=bearer(write)),
        client_a.delete(one, headers=bearer(write)),
    ):
        assert_problem(refused, 403, "permission_denied")
    with tenant_context(tenant_a):
        assert list(Invitation.objects.live()) == [invitation]
    made = post_json(
        client_a, "/api/v1/invitations", {"email": "k@alpha.test"}, headers=bearer(admin)
    )
    assert made.status_code == 201
    assert client_a.delete(one, headers=bearer(admin)).status_code == 204


def test_tenant_b_never_reaches_tenant_a_invitations(
    owner_b: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    with tenant_context(tenant_a):
        invitation = InvitationFactory.create(email="secret@alpha.test")
    path = f"/api/v1/invitations/{invitation.pk}"
    _, key_of_a = key_in(tenant_a, scopes=["admin"])

    assert owner_b.get("/api/v1/invitations").json()["results"] == []
    assert_problem(owner_b.get(path), 404, "invitation_not_found")
    assert_problem(owner_b.delete(path), 404, "invitation_not_found")
    assert_problem(post_json(owner_b, f"{path}/resend", {}), 404, "invitation_not_found")
    machine, headers = machine_on(TENANT_B.host, key_of_a)
    refused = post_json(machine, "/api/v1/invitations", {"email": "x@beta.test"}, headers=headers)
    assert_problem(refused, 401, "authentication_failed")
    with tenant_context(tenant_a):
        assert list(Invitation.objects.live()) == [invitation]
    with tenant_context(tenant_b):
        assert not Invitation.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize("rows", [1, 50])
def test_invitation_list_queries_do_not_grow(
    owner_a: Client, tenant_a: Tenant, rows: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    with tenant_context(tenant_a):
        InvitationFactory.create_batch(rows, invited_by=owner_of_a())
    owner_a.get("/api/v1/invitations")  # warm: the host's route is cached after this

    # search path, session, user, one page of invitations
    with django_assert_num_queries(4):
        response = owner_a.get("/api/v1/invitations?page_size=100")

    assert len(response.json()["results"]) == rows


# SCHEMA ---------------------------------------------------------------------------------


def test_the_schema_describes_people_and_invitations() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    refs = "#/components/schemas/"

    def answer(path: str, method: str) -> dict[str, Any]:
        found: dict[str, Any] = paths[path][method]["responses"]
        return found

    member = "/api/v1/members/{member_id}"
    invitation = "/api/v1/invitations/{invitation_id}"
    listed = answer("/api/v1/members", "get")["200"]["content"]["application/json"]["schema"]
    assert listed["$ref"] == f"{refs}PaginatedMemberSummaryList"
    assert {p["name"] for p in paths["/api/v1/members"]["get"]["parameters"]} == {
        "cursor",
        "page_size",
        "role",
    }
    patched = paths[member]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert patched["$ref"] == f"{refs}PatchedMemberUpdateInput"
    assert successes(answer(member, "delete")) == ["204"]
    assert successes(answer("/api/v1/invitations", "post")) == ["201"]
    assert successes(answer(invitation, "delete")) == ["204"]
    assert successes(answer(f"{invitation}/resend", "post")) == ["200"]
    properties = schema["components"]["schemas"]["MemberSummary"]["properties"]
    assert set(properties) == MEMBER_FIELDS
