"""Password reset by e-mail: on a workspace's host for its people, on the root host for staff."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.core.cache import caches
from django.test import Client, override_settings
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_redis import get_redis_connection  # type: ignore[import-untyped]

from shared_apps.accounts.models import User
from shared_apps.accounts.tokens import password_reset_token
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tests.factories import TEST_PASSWORD, UserFactory
from tests.fixtures import TENANT_A, TENANT_B, sign_in

NEW_PASSWORD = "purple-lantern-orbit-42"
SENT = b"If an account exists for that address"
INVALID_LINK = b"This link does not work"
THROTTLED = b"Too many reset requests"

Capture = Callable[..., AbstractContextManager[Any]]


@pytest.fixture(autouse=True)
def _fresh_reset_limits() -> Iterator[None]:
    """Reset requests of earlier tests (and runs) do not count against this test's."""

    def forget() -> None:
        redis = get_redis_connection("default")
        for key in redis.scan_iter(match=f"{caches['default'].key_prefix}:*:rl:*"):
            redis.delete(key)

    forget()
    yield
    forget()


def request_reset(client: Client, email: str, capture: Capture, **extra: Any) -> Any:
    with capture(execute=True):
        return client.post("/password/reset/", {"email": email}, **extra)


def link_in(message: Any) -> str:
    found = re.search(r"http://\S+/password/reset/\S+/", str(message.body))
    assert found is not None, message.body
    return found.group(0)


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def set_password(client: Client, link: str, password: str, capture: Capture) -> Any:
    """Open the link (the token moves into the session), then send the new password."""
    opened = client.get(path_of(link))
    assert opened.status_code == 302
    with capture(execute=True):
        return client.post(opened["Location"], {"new_password": password})


def link_for(user: User, token: str) -> str:
    return f"/password/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/{token}/"


# -- the request --------------------------------------------------------------------------


def test_the_answer_is_the_same_for_known_unknown_and_inactive_addresses(
    client_a: Client, tenant_a: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    with tenant_context(tenant_a):
        UserFactory.create(email="known@alpha.test")
        UserFactory.create(email="gone@alpha.test", is_active=False)

    answers = [
        request_reset(client_a, email, django_capture_on_commit_callbacks)
        for email in ("Known@Alpha.test", "nobody@alpha.test", "gone@alpha.test")
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert SENT in answers[0].content
    assert answers[0].content == answers[1].content == answers[2].content
    [message] = mail.outbox
    assert message.to == ["known@alpha.test"]
    assert message.subject == "Reset your password for Alpha Inc"
    assert link_in(message).startswith("http://alpha.localhost/password/reset/")
    [(html, _mimetype)] = message.alternatives  # type: ignore[union-attr]
    assert "Choose a new password" in str(html)


def test_a_malformed_address_shows_the_form_again(client_a: Client) -> None:
    response = client_a.post("/password/reset/", {"email": "not an address"})
    assert response.status_code == 400
    assert b"Enter a valid email address." in response.content
    assert mail.outbox == []


def test_a_request_in_one_workspace_never_reaches_another(
    client_a: Client,
    tenant_a: Tenant,
    tenant_b: Tenant,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with tenant_context(tenant_b):
        UserFactory.create(email="only-in-beta@beta.test")

    response = request_reset(client_a, "only-in-beta@beta.test", django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert SENT in response.content
    assert mail.outbox == []


def test_sign_in_and_lockout_pages_lead_to_the_reset_page(client_a: Client, root: Client) -> None:
    for client in (client_a, root):
        page = client.get("/login/")
        assert b'href="/password/reset/"' in page.content
        assert b"Forgot your password?" in page.content
    for _ in range(5):
        locked = sign_in(client_a, TENANT_A.owner_email, "wrong password")
    assert locked.status_code == 429
    assert b'href="/password/reset/"' in locked.content


# -- the link -----------------------------------------------------------------------------


def test_the_link_sets_a_new_password_once(
    client_a: Client, tenant_a: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    with tenant_context(tenant_a):
        user = UserFactory.create(email="forgetful@alpha.test")
    request_reset(client_a, user.email, django_capture_on_commit_callbacks)
    link = link_in(mail.outbox[-1])

    done = set_password(client_a, link, NEW_PASSWORD, django_capture_on_commit_callbacks)

    assert done.status_code == 302
    assert done["Location"] == "/password/reset/done/"
    assert b"Your password was changed" in client_a.get(done["Location"]).content
    assert not client_a.get("/").wsgi_request.user.is_authenticated  # not signed in for them
    changed = mail.outbox[-1]
    assert changed.to == [user.email]
    assert changed.subject == "Your password for Alpha Inc was changed"
    assert "http://alpha.localhost/login/" in str(changed.body)

    again = client_a.get(path_of(link))
    assert again.status_code == 200
    assert INVALID_LINK in again.content
    browser = Client(HTTP_HOST=TENANT_A.host)
    assert sign_in(browser, user.email, TEST_PASSWORD).status_code == 200  # the old one fails
    assert sign_in(browser, user.email, NEW_PASSWORD).status_code == 302


def test_an_expired_link_is_refused(client_a: Client, tenant_a: Tenant) -> None:
    generator = password_reset_token
    with tenant_context(tenant_a):
        user = UserFactory.create(email="late@alpha.test")
        now = generator._num_seconds(generator._now())
        expired = generator._make_token_with_timestamp(
            user, now - settings.PASSWORD_RESET_TIMEOUT - 1, generator.secret
        )
        fresh = generator._make_token_with_timestamp(
            user, now - settings.PASSWORD_RESET_TIMEOUT + 60, generator.secret
        )

    refused = client_a.get(link_for(user, expired))
    assert refused.status_code == 200
    assert INVALID_LINK in refused.content
    assert client_a.get(link_for(user, fresh)).status_code == 302  # a minute before expiry


def test_a_token_of_one_workspace_is_refused_on_another(
    client_b: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    with tenant_context(tenant_a):
        user_a = UserFactory.create(email="twin@example.test")
        token = password_reset_token.make_token(user_a)
    with tenant_context(tenant_b):
        # B's user has A's id, address and password hash: only the workspace differs.
        user_b = UserFactory.create(pk=user_a.pk, email=user_a.email)
        User.objects.filter(pk=user_b.pk).update(password=user_a.password)
        user_b.refresh_from_db()
        assert default_token_generator.check_token(
            user_b, default_token_generator.make_token(user_a)
        )
        assert not password_reset_token.check_token(user_b, token)

    response = client_b.get(link_for(user_b, token))

    assert response.status_code == 200
    assert INVALID_LINK in response.content
    with tenant_context(tenant_b):
        assert User.objects.get(pk=user_b.pk).password == user_a.password


def test_an_account_deactivated_after_the_mail_cannot_use_the_link(
    client_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        user = UserFactory.create(email="leaver@alpha.test")
        token = password_reset_token.make_token(user)
        User.objects.filter(pk=user.pk).update(is_active=False)

    assert INVALID_LINK in client_a.get(link_for(user, token)).content


def test_platform_staff_reset_their_password_on_the_root_host(
    root: Client, django_capture_on_commit_callbacks: Capture
) -> None:
    with public_context():
        staff = UserFactory.create(email="operator@platform.test", is_staff=True)

    response = request_reset(root, "operator@platform.test", django_capture_on_commit_callbacks)

    assert response.status_code == 200
    [message] = mail.outbox
    assert message.subject == "Reset your password for Tenant Platform"
    link = link_in(message)
    assert link.startswith("http://localhost:8000/password/reset/")
    done = set_password(root, link, NEW_PASSWORD, django_capture_on_commit_callbacks)
    assert done.status_code == 302
    with public_context():
        staff.refresh_from_db()
        assert staff.check_password(NEW_PASSWORD)
    assert sign_in(Client(HTTP_HOST="localhost:8000"), staff.email, NEW_PASSWORD).status_code == 302


def test_a_weak_password_is_refused_with_the_reason(
    client_a: Client, tenant_a: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    with tenant_context(tenant_a):
        user = UserFactory.create(email="weak@alpha.test")
    request_reset(client_a, user.email, django_capture_on_commit_callbacks)
    link = link_in(mail.outbox[-1])

    refused = set_password(client_a, link, "password", django_capture_on_commit_callbacks)

    assert refused.status_code == 400
    assert b"This password is too common." in refused.content
    assert b'id="new_password-errors"' in refused.content
    with tenant_context(tenant_a):
        user.refresh_from_db()
        assert user.check_password(TEST_PASSWORD)
    assert len(mail.outbox) == 1  # no "password changed" notice
    # The form is still there: a good password now goes through.
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client_a.post(refused.wsgi_request.path, {"new_password": NEW_PASSWORD})
    assert accepted.status_code == 302


# -- after the reset ----------------------------------------------------------------------


def test_a_reset_signs_out_every_other_session(
    client_a: Client, tenant_a: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    with tenant_context(tenant_a):
        user = UserFactory.create(email="stolen@alpha.test")
    elsewhere = Client(HTTP_HOST=TENANT_A.host)
    with tenant_context(tenant_a):
        elsewhere.force_login(user)
    assert elsewhere.get("/").status_code == 200  # signed in before the reset

    request_reset(client_a, user.email, django_capture_on_commit_callbacks)
    set_password(
        client_a, link_in(mail.outbox[-1]), NEW_PASSWORD, django_capture_on_commit_callbacks
    )

    after = elsewhere.get("/")
    assert after.status_code == 302
    assert after["Location"].startswith("/login/")


def test_a_reset_lifts_the_sign_in_lockout_of_the_address(
    tenant_a: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    with tenant_context(tenant_a):
        user = UserFactory.create(email="locked@alpha.test")
    browser = Client(HTTP_HOST=TENANT_A.host, REMOTE_ADDR="203.0.113.50")
    for _ in range(5):
        sign_in(browser, user.email, "wrong password")
    assert sign_in(browser, user.email, TEST_PASSWORD).status_code == 429

    request_reset(browser, user.email, django_capture_on_commit_callbacks)
    set_password(
        browser, link_in(mail.outbox[-1]), NEW_PASSWORD, django_capture_on_commit_callbacks
    )

    assert sign_in(browser, user.email, NEW_PASSWORD).status_code == 302


def test_logs_carry_the_user_id_never_the_address_or_the_token(
    client_a: Client,
    tenant_a: Tenant,
    django_capture_on_commit_callbacks: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with tenant_context(tenant_a):
        user = UserFactory.create(email="private@alpha.test")
    with caplog.at_level(logging.DEBUG):
        request_reset(client_a, user.email, django_capture_on_commit_callbacks)
        link = link_in(mail.outbox[-1])
        set_password(client_a, link, "password", django_capture_on_commit_callbacks)
        set_password(client_a, link, NEW_PASSWORD, django_capture_on_commit_callbacks)
        client_a.get(path_of(link))  # spent

    token = link.rstrip("/").rsplit("/", 1)[1]
    logged = " ".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)
    assert "password reset" in logged
    assert user.email not in logged
    assert token not in logged
    assert [r.reset_user_id for r in caplog.records if hasattr(r, "reset_user_id")] == [
        user.pk,
        user.pk,
    ]


# -- rate limits --------------------------------------------------------------------------


def test_an_address_gets_a_limited_number_of_links(
    tenant_a: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    with tenant_context(tenant_a):
        UserFactory.create(email="popular@alpha.test")
    limit = int(settings.RATE_LIMITS["password_reset"]["address"].split("/")[0])

    def from_client(n: int, email: str) -> Any:
        browser = Client(HTTP_HOST=TENANT_A.host, REMOTE_ADDR=f"198.51.100.{n}")
        return request_reset(browser, email, django_capture_on_commit_callbacks)

    for email in ("popular@alpha.test", "nobody@alpha.test"):
        for n in range(limit):  # from different clients: the address is what counts
            assert from_client(n, email).status_code == 200
        over = from_client(limit, email.upper())
        assert over.status_code == 429
        assert THROTTLED in over.content
        assert b"Wait " in over.content
        assert int(over["Retry-After"]) > 0

    assert len(mail.outbox) == limit  # to the known address, none past the limit
    assert from_client(99, "someone-else@alpha.test").status_code == 200


def test_a_client_gets_a_limited_number_of_requests_per_workspace(
    tenant_a: Tenant, tenant_b: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    limit = int(settings.RATE_LIMITS["password_reset"]["client"].split("/")[0])
    browser = Client(HTTP_HOST=TENANT_A.host, REMOTE_ADDR="203.0.113.20")
    for n in range(limit):
        # A forged X-Forwarded-For does not make a new client without trusted proxies.
        response = request_reset(
            browser,
            f"guess{n}@alpha.test",
            django_capture_on_commit_callbacks,
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )
        assert response.status_code == 200
    over = request_reset(
        browser,
        "guess-last@alpha.test",
        django_capture_on_commit_callbacks,
        HTTP_X_FORWARDED_FOR="10.9.9.9",
    )
    assert over.status_code == 429
    assert THROTTLED in over.content

    in_b = Client(HTTP_HOST=TENANT_B.host, REMOTE_ADDR="203.0.113.20")
    assert (
        request_reset(in_b, "guess@beta.test", django_capture_on_commit_callbacks).status_code
        == 200
    )


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(
    tenant_a: Tenant, django_capture_on_commit_callbacks: Capture, settings: Any
) -> None:
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "password_reset": {**settings.RATE_LIMITS["password_reset"], "client": "2/h"},
    }
    proxy = Client(HTTP_HOST=TENANT_A.host, REMOTE_ADDR="10.0.0.1")

    def post(n: int, client_ip: str) -> int:
        return int(
            request_reset(
                proxy,
                f"behind{n}@alpha.test",
                django_capture_on_commit_callbacks,
                HTTP_X_FORWARDED_FOR=f"203.0.113.9, {client_ip}",
            ).status_code
        )

    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}):
        assert [post(n, "198.51.100.1") for n in range(3)] == [200, 200, 429]
        assert post(3, "198.51.100.2") == 200  # another client behind the same proxy
