"""Two-factor sign-in holds against someone who only has the password.

Adding an authenticator takes the password again and a code e-mailed to the account; the
account hears of every device added or removed and of new backup codes; backup codes are
shown once and sign in once; an owner can require two-factor of everyone in the workspace.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.test import Client, override_settings
from django.urls import resolve, reverse
from django.urls.base import set_urlconf
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from shared_apps.accounts import devices
from shared_apps.accounts.device_views import DeviceSetupView
from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.workspace.models import WorkspaceSettings
from tenant_apps.workspace.selectors import (
    TWO_FACTOR_REQUIRED_CACHE_KEY,
    workspace_two_factor_is_required,
)
from tenant_apps.workspace.services import workspace_two_factor_require
from tests.factories import TEST_PASSWORD, UserFactory, totp_code, totp_device_for
from tests.fixtures import TENANT_A, TENANT_B, sign_in

GATE = "/account/two_factor/setup/confirm/"
SETUP = "/account/two_factor/setup/"
COMPLETE = "/account/two_factor/setup/complete/"
BACKUP = "/account/two_factor/backup/tokens/"
Capture = Callable[..., Any]


@pytest.fixture(autouse=True)
def _forget_cached_flags(tenant_a: Tenant, tenant_b: Tenant) -> Iterator[None]:
    """The flag is cached in Redis, which the test's rollback does not reach."""

    def forget() -> None:
        from django.core.cache import cache

        for tenant in (tenant_a, tenant_b):
            with tenant_context(tenant):
                cache.delete(TWO_FACTOR_REQUIRED_CACHE_KEY)

    forget()
    yield
    forget()


def owner(tenant: Tenant, email: str = TENANT_A.owner_email) -> User:
    with tenant_context(tenant):
        return User.objects.get(email=email)


def signed_in(tenant: Tenant, user: User) -> Client:
    """A session of `user` that passed the password only (or someone holding it)."""
    client = Client(HTTP_HOST=f"{tenant.subdomain}.localhost")
    with tenant_context(tenant):
        client.force_login(user)
    return client


def mailed_code(to: str) -> str:
    message = mail.outbox[-1]
    assert message.to == [to]
    match = re.search(r"\b(\d{6})\b", str(message.body))
    assert match, message.body
    return match.group(1)


def pass_gate(client: Client, email: str, capture: Capture) -> None:
    with capture(execute=True):
        response = client.post(GATE, {"step": "password", "password": TEST_PASSWORD})
    assert response.status_code == 302
    response = client.post(GATE, {"step": "code", "code": mailed_code(email)})
    assert (response.status_code, response["Location"]) == (302, SETUP)


def enrol(client: Client, capture: Capture) -> TOTPDevice:
    """Walk the setup wizard (after the gate); return the new device."""
    assert client.get(SETUP).status_code == 200
    response = client.post(SETUP, {"device_setup_view-current_step": "welcome"})
    assert response.status_code == 200
    secret = client.session["django_two_factor-qr_secret_key"]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    with capture(execute=True):
        response = client.post(
            SETUP,
            {"device_setup_view-current_step": "generator", "generator-token": f"{totp(key):06d}"},
        )
    assert (response.status_code, response["Location"]) == (302, COMPLETE)
    return TOTPDevice.objects.get()


# THE GATE ------------------------------------------------------------------------------


def test_two_factor_setup_still_names_the_gated_wizard() -> None:
    for urlconf in ("config.urls_tenant", "config.urls_public"):
        set_urlconf(urlconf)
        try:
            assert reverse("two_factor:setup") == SETUP
            assert resolve(SETUP).func.view_class is DeviceSetupView  # type: ignore[attr-defined]
            assert reverse("two_factor:setup_complete") == COMPLETE
            assert reverse("two_factor:qr") == "/account/two_factor/qrcode/"
        finally:
            set_urlconf(None)


def test_a_session_alone_cannot_open_the_setup_wizard(tenant_a: Tenant) -> None:
    client = signed_in(tenant_a, owner(tenant_a))
    response = client.get(SETUP)
    assert (response.status_code, response["Location"]) == (302, GATE)
    response = client.post(SETUP, {"device_setup_view-current_step": "welcome"})
    assert (response.status_code, response["Location"]) == (302, GATE)
    with tenant_context(tenant_a):
        assert TOTPDevice.objects.count() == 0


def test_a_wrong_password_sends_no_code(tenant_a: Tenant, mailoutbox: list[Any]) -> None:
    client = signed_in(tenant_a, owner(tenant_a))
    response = client.post(GATE, {"step": "password", "password": "not-the-password"})
    assert response.status_code == 200
    assert b"That is not your password." in response.content
    assert mailoutbox == []
    assert client.get(SETUP)["Location"] == GATE


def test_the_code_goes_only_to_the_accounts_own_address(
    tenant_a: Tenant, mailoutbox: list[Any], django_capture_on_commit_callbacks: Capture
) -> None:
    client = signed_in(tenant_a, owner(tenant_a))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            GATE, {"step": "password", "password": TEST_PASSWORD, "email": "thief@evil.test"}
        )
    assert response.status_code == 302
    assert [message.to for message in mailoutbox] == [[TENANT_A.owner_email]]
    assert mailoutbox[0].subject == "Your code to add a sign-in device to Alpha Inc"
    code = mailed_code(TENANT_A.owner_email)
    assert code in mailoutbox[0].alternatives[0][0]  # the HTML part too
    # Stored hashed: the session holds no trace of the code itself.
    with tenant_context(tenant_a):
        assert code not in str(client.session[devices.CONFIRMATION_SESSION_KEY])
    assert client.get(SETUP)["Location"] == GATE  # the password alone is not enough


def test_a_wrong_code_is_refused_and_a_few_tries_void_the_code(
    tenant_a: Tenant, mailoutbox: list[Any], django_capture_on_commit_callbacks: Capture
) -> None:
    client = signed_in(tenant_a, owner(tenant_a))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(GATE, {"step": "password", "password": TEST_PASSWORD})
    code = mailed_code(TENANT_A.owner_email)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    response = client.post(GATE, {"step": "code", "code": wrong})
    assert response.status_code == 200
    assert b"That code is not right." in response.content
    assert client.get(SETUP)["Location"] == GATE
    for _ in range(3):
        client.post(GATE, {"step": "code", "code": wrong})
    response = client.post(GATE, {"step": "code", "code": wrong})  # the fifth
    assert b"Too many wrong codes." in response.content

    response = client.post(GATE, {"step": "code", "code": code})  # now even the right one
    assert response.status_code == 200
    assert client.get(SETUP)["Location"] == GATE


def test_an_expired_code_is_refused(
    tenant_a: Tenant,
    mailoutbox: list[Any],
    settings: Any,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    settings.ACCOUNTS_DEVICE_CODE_SECONDS = 0
    client = signed_in(tenant_a, owner(tenant_a))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(GATE, {"step": "password", "password": TEST_PASSWORD})
    response = client.post(GATE, {"step": "code", "code": mailed_code(TENANT_A.owner_email)})
    assert response.status_code == 200
    assert client.get(SETUP)["Location"] == GATE


def test_the_confirmation_holds_for_its_session_and_its_time_only(
    tenant_a: Tenant,
    mailoutbox: list[Any],
    settings: Any,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    person = owner(tenant_a)
    client = signed_in(tenant_a, person)
    pass_gate(client, person.email, django_capture_on_commit_callbacks)
    assert client.get(SETUP).status_code == 200

    other_session = signed_in(tenant_a, person)
    assert other_session.get(SETUP)["Location"] == GATE

    settings.ACCOUNTS_DEVICE_CONFIRMATION_SECONDS = 0  # ten minutes later
    client.post(GATE, {"step": "restart"})
    pass_gate(client, person.email, django_capture_on_commit_callbacks)
    assert client.get(SETUP)["Location"] == GATE


# ENROLMENT, E-MAILS, BACKUP CODES ------------------------------------------------------


def test_after_the_gate_enrolment_works_and_backup_codes_are_shown_once(
    tenant_a: Tenant, mailoutbox: list[Any], django_capture_on_commit_callbacks: Capture
) -> None:
    person = owner(tenant_a)
    client = signed_in(tenant_a, person)
    with tenant_context(tenant_a):
        pass_gate(client, person.email, django_capture_on_commit_callbacks)
        device = enrol(client, django_capture_on_commit_callbacks)
    assert device.user_id == person.pk
    assert mailoutbox[-1].subject == "An authenticator app was added to your Alpha Inc account"
    assert mailoutbox[-1].to == [person.email]

    with django_capture_on_commit_callbacks(execute=True):
        complete = client.get(COMPLETE)
    assert complete.status_code == 200
    shown = complete.context["codes"]
    assert len(shown) == 10
    with tenant_context(tenant_a):
        stored = set(
            StaticToken.objects.filter(device__user=person).values_list("token", flat=True)
        )
    assert stored == set(shown)
    for code in shown:
        assert code.encode() in complete.content
    assert b"only this once" in complete.content
    assert mailoutbox[-1].subject == "New backup codes for your Alpha Inc account"
    assert shown[0] not in str(mailoutbox[-1].body)  # the codes are never e-mailed

    again = client.get(COMPLETE)  # a reload does not show them again
    assert again.context["codes"] == []
    assert shown[0].encode() not in again.content
    tokens_page = client.get(BACKUP)
    assert tokens_page.status_code == 200
    assert tokens_page.context["remaining"] == 10
    assert shown[0].encode() not in tokens_page.content

    # The next device needs a new confirmation.
    assert client.get(SETUP)["Location"] == GATE


def test_new_backup_codes_replace_the_old_ones_and_are_shown_once(
    tenant_a: Tenant, mailoutbox: list[Any], django_capture_on_commit_callbacks: Capture
) -> None:
    with tenant_context(tenant_a):
        person = owner(tenant_a)
        device = totp_device_for(person)
        old = devices.backup_codes_generate(user=person)
        client = Client(HTTP_HOST=TENANT_A.host)
        sign_in(client, person.email, TEST_PASSWORD, token=totp_code(device))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(BACKUP)
    assert response.status_code == 200
    new = response.context["codes"]
    assert len(new) == 10
    assert not set(new) & set(old)
    with tenant_context(tenant_a):
        stored = set(
            StaticToken.objects.filter(device__user=person).values_list("token", flat=True)
        )
    assert stored == set(new)
    assert mailoutbox[-1].subject == "New backup codes for your Alpha Inc account"
    assert new[0].encode() not in client.get(BACKUP).content


def test_a_backup_code_signs_in_once_when_the_phone_is_lost(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        person = owner(tenant_a)
        totp_device_for(person)
        codes = devices.backup_codes_generate(user=person)
    client = Client(HTTP_HOST=TENANT_A.host)
    response = sign_in(client, person.email, TEST_PASSWORD)
    assert response.status_code == 200  # the second step is asked for
    response = client.post(
        "/login/", {"login_view-current_step": "backup", "backup-otp_token": codes[0]}
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200  # verified: the admin opens
    with tenant_context(tenant_a):
        assert StaticToken.objects.filter(device__user=person).count() == 9

    spent = Client(HTTP_HOST=TENANT_A.host)
    sign_in(spent, person.email, TEST_PASSWORD)
    response = spent.post(
        "/login/", {"login_view-current_step": "backup", "backup-otp_token": codes[0]}
    )
    assert response.status_code == 200
    assert spent.get("/admin/").status_code == 302


def test_removing_an_authenticator_tells_the_account(
    tenant_a: Tenant, mailoutbox: list[Any], django_capture_on_commit_callbacks: Capture
) -> None:
    with tenant_context(tenant_a):
        person = owner(tenant_a)
        with django_capture_on_commit_callbacks(execute=True):
            device = totp_device_for(person)
        assert [m.subject for m in mailoutbox] == [
            "An authenticator app was added to your Alpha Inc account"
        ]
        with django_capture_on_commit_callbacks(execute=True):
            device.throttle_increment()  # type: ignore[attr-defined]  # saved, not added
            device.delete()  # type: ignore[attr-defined]
    assert [(m.subject, m.to) for m in mailoutbox[1:]] == [
        ("An authenticator app was removed from your Alpha Inc account", [person.email])
    ]


# REQUIRING TWO-FACTOR ------------------------------------------------------------------


def test_two_factor_is_not_required_by_default(in_tenant_a: Tenant) -> None:
    assert WorkspaceSettings._meta.get_field("is_two_factor_required").default is False
    assert workspace_two_factor_is_required() is False


def test_an_owner_requires_two_factor_and_it_is_audited(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        totp_device_for(owner(tenant_a))
    client = Client(HTTP_HOST=TENANT_A.host)
    with tenant_context(tenant_a):
        sign_in(
            client, TENANT_A.owner_email, TEST_PASSWORD, token=totp_code(TOTPDevice.objects.get())
        )
    assert client.get("/security/").status_code == 200

    response = client.post("/security/two-factor/", {"required": "on"})
    assert (response.status_code, response["Location"]) == (302, "/security/")
    with tenant_context(tenant_a):
        assert WorkspaceSettings.objects.get().is_two_factor_required is True
        assert workspace_two_factor_is_required() is True
    with public_context():
        record = AuditRecord.objects.filter(action="workspace.two_factor_required").get()
    assert (record.actor, record.subdomain, record.outcome, record.detail) == (
        f"user:{TENANT_A.owner_email}",
        TENANT_A.subdomain,
        AuditRecord.Outcome.SUCCEEDED,
        {"required": True},
    )
    assert client.get("/").status_code == 200  # the owner's verified session goes on


@pytest.mark.parametrize("role", [User.Role.ADMIN, User.Role.MEMBER])
def test_only_owners_change_the_requirement(tenant_a: Tenant, role: User.Role) -> None:
    with tenant_context(tenant_a):
        client = signed_in(tenant_a, UserFactory.create(role=role))
    assert client.get("/security/").status_code == 403
    assert client.post("/security/two-factor/", {"required": "on"}).status_code == 403
    with tenant_context(tenant_a):
        assert not WorkspaceSettings.objects.filter(is_two_factor_required=True).exists()
        assert workspace_two_factor_is_required() is False
    with public_context():
        assert not AuditRecord.objects.filter(action="workspace.two_factor_required").exists()


def test_the_security_page_is_linked_from_the_home_page_for_owners_only(
    tenant_a: Tenant, owner_a: Client
) -> None:
    assert b'href="/security/"' in owner_a.get("/").content
    with tenant_context(tenant_a):
        member = signed_in(tenant_a, UserFactory.create(role=User.Role.ADMIN))
    assert b'href="/security/"' not in member.get("/").content


def _require(tenant: Tenant, email: str) -> None:
    with tenant_context(tenant):
        workspace_two_factor_require(actor=owner(tenant, email), required=True)


def test_when_required_a_session_without_a_device_is_sent_to_enrol(tenant_a: Tenant) -> None:
    _require(tenant_a, TENANT_A.owner_email)
    with tenant_context(tenant_a):
        client = signed_in(tenant_a, UserFactory.create(role=User.Role.MEMBER))
    for page in ("/", "/projects/", "/members/", "/admin/"):
        response = client.get(page)
        assert (response.status_code, response["Location"]) == (
            302,
            f"{GATE}?{urlencode({'next': page})}",
        )
    # The way through stays open, and so do the pages that must.
    assert client.get(GATE).status_code == 200
    assert client.get(SETUP)["Location"] == GATE
    for page in ("/health/", "/errors/", "/login/", "/static/css/site.css"):
        assert client.get(page).status_code in (200, 302, 404), page
        assert not client.get(page).get("Location", "").startswith(GATE)


def test_when_required_a_password_only_session_with_a_device_signs_in_again(
    tenant_a: Tenant,
) -> None:
    _require(tenant_a, TENANT_A.owner_email)
    with tenant_context(tenant_a):
        person = UserFactory.create(role=User.Role.MEMBER)
        totp_device_for(person)
    client = signed_in(tenant_a, person)
    response = client.get("/projects/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=%2Fprojects%2F")
    with tenant_context(tenant_a):
        assert "_auth_user_id" not in client.session  # signed out, to sign in with the code


def test_when_required_the_api_refuses_unverified_sessions_with_a_problem(
    tenant_a: Tenant,
) -> None:
    _require(tenant_a, TENANT_A.owner_email)
    with tenant_context(tenant_a):
        client = signed_in(tenant_a, UserFactory.create(role=User.Role.ADMIN))
    response = client.post("/api/v1/projects", {"name": "Leak"}, content_type="application/json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "second_factor_required"


def test_when_required_a_verified_session_passes(tenant_a: Tenant) -> None:
    _require(tenant_a, TENANT_A.owner_email)
    with tenant_context(tenant_a):
        person = UserFactory.create(role=User.Role.ADMIN)
        device = totp_device_for(person)
        client = Client(HTTP_HOST=TENANT_A.host)
        assert (
            sign_in(client, person.email, TEST_PASSWORD, token=totp_code(device)).status_code == 302
        )
    assert client.get("/projects/").status_code == 200
    response = client.post("/api/v1/projects", {"name": "Fine"}, content_type="application/json")
    assert response.status_code == 201


def test_one_workspace_requiring_two_factor_leaves_another_alone(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    _require(tenant_a, TENANT_A.owner_email)
    client_b = signed_in(tenant_b, owner(tenant_b, TENANT_B.owner_email))
    assert client_b.get("/").status_code == 200
    with tenant_context(tenant_b):
        assert workspace_two_factor_is_required() is False
    with tenant_context(tenant_a):
        assert workspace_two_factor_is_required() is True


@pytest.mark.parametrize("required", [False, True])
def test_the_requirement_costs_no_query_on_a_warm_request(
    tenant_a: Tenant, required: bool, django_assert_num_queries: Callable[..., Any]
) -> None:
    with tenant_context(tenant_a):
        person = owner(tenant_a)
        device = totp_device_for(person)
        client = Client(HTTP_HOST=TENANT_A.host)
        sign_in(client, person.email, TEST_PASSWORD, token=totp_code(device))
    if required:
        _require(tenant_a, TENANT_A.owner_email)
    client.get("/")  # warm: the flag is cached after this

    # search path, session, user, the verifying device, workspace settings
    with django_assert_num_queries(5):
        assert client.get("/").status_code == 200
    without = [
        name
        for name in django_settings.MIDDLEWARE
        if not name.endswith("TwoFactorRequiredMiddleware")
    ]
    with override_settings(MIDDLEWARE=without), django_assert_num_queries(5):
        assert client.get("/").status_code == 200
