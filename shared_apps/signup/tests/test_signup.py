"""Self-service signup: page, API, hand-off to the new workspace, races and refusals."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.core import mail
from django.db import connections
from django.test import Client, override_settings

from shared_apps.accounts.handoff import handoff_issue
from shared_apps.fleet.creation import tenant_create
from shared_apps.tenants.errors import SubdomainTakenError
from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tests.factories import TEST_PASSWORD
from tests.fixtures import follow_handoff, tenant_purge

SIGNUP = {
    "name": "Acme Rockets",
    "subdomain": " Acme ",
    "email": "Wile@Acme.test",
    "password": TEST_PASSWORD,
}


pytestmark = pytest.mark.usefixtures("fresh_signup_throttle")


def test_signup_page_lands_the_owner_signed_in_on_the_new_workspace(root: Client) -> None:
    response = root.post("/signup/", SIGNUP)
    assert response.status_code == 302
    assert response["Location"].startswith("http://acme.localhost:8000/auth/handoff/?token=")

    browser, landed = follow_handoff(response["Location"])
    assert landed.status_code == 302
    assert landed["Location"] == "/"
    home = browser.get("/")
    assert home.status_code == 200
    assert b"Welcome to Acme Rockets" in home.content
    assert b"wile@acme.test" in home.content


def test_signup_sends_a_welcome_email_with_the_workspace_url(
    root: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        root.post("/signup/", SIGNUP)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["wile@acme.test"]
    assert "http://acme.localhost:8000/" in mail.outbox[0].body


@pytest.mark.parametrize(
    ("subdomain", "message"),
    [
        ("a", "3 to 40 characters"),
        ("-acme", "start with a letter"),
        ("admin", "reserved"),
        ("alpha", "already taken"),
    ],
)
def test_signup_page_shows_subdomain_errors_beside_the_field(
    root: Client, tenant_a: Tenant, subdomain: str, message: str
) -> None:
    response = root.post("/signup/", {**SIGNUP, "subdomain": subdomain})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["subdomain"]
    assert message in errors["subdomain"][0]
    assert b'id="subdomain-errors"' in response.content
    with public_context():
        assert not Tenant.objects.filter(name="Acme Rockets").exists()


def test_signup_page_refuses_a_weak_password_beside_its_field(root: Client) -> None:
    response = root.post("/signup/", {**SIGNUP, "password": "123"})
    assert response.status_code == 200
    assert "too short" in response.context["form"].errors["password"][0]


def test_signup_is_only_on_the_root_host(client_a: Client) -> None:
    assert client_a.get("/signup/").status_code == 404


# -- API ----------------------------------------------------------------------------------


def test_api_signup_answers_201_with_the_workspace(root: Client) -> None:
    response = root.post("/api/v1/signup", SIGNUP, content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    assert body["subdomain"] == "acme"
    assert body["url"] == "http://acme.localhost:8000/"
    with public_context():
        assert str(Tenant.objects.get(subdomain="acme").id) == body["id"]
    browser, landed = follow_handoff(body["handoff_url"])
    assert landed.status_code == 302
    assert browser.get("/").status_code == 200


def test_api_signup_field_errors_are_problem_json(root: Client) -> None:
    response = root.post(
        "/api/v1/signup", {"name": "", "email": "nope"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert problem["status"] == 400
    assert sorted(error["field"] for error in problem["errors"]) == [
        "email",
        "name",
        "password",
        "subdomain",
    ]


@pytest.mark.parametrize(
    ("subdomain", "status", "code"),
    [
        ("x--y", 400, "subdomain_invalid"),
        ("www", 400, "subdomain_reserved"),
        ("ALPHA", 409, "subdomain_taken"),
    ],
)
def test_api_signup_rule_errors_have_stable_codes(
    root: Client, tenant_a: Tenant, subdomain: str, status: int, code: str
) -> None:
    response = root.post(
        "/api/v1/signup", {**SIGNUP, "subdomain": subdomain}, content_type="application/json"
    )
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["errors"][0]["field"] == "subdomain"


def test_api_signup_is_rate_limited_per_client_ip(root: Client, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signup": {"client": "2/m"}}
    invalid = {**SIGNUP, "subdomain": "www"}  # cheap requests; throttling comes first
    for spoofed in ("10.0.0.1", "10.0.0.2"):
        response = root.post(
            "/api/v1/signup",
            invalid,
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=spoofed,
        )
        assert response.status_code == 400
    response = root.post(
        "/api/v1/signup", invalid, content_type="application/json", HTTP_X_FORWARDED_FOR="10.0.0.3"
    )
    assert response.status_code == 429  # a forged X-Forwarded-For does not reset the count
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(
    root: Client, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signup": {"client": "1/m"}}
    invalid = {**SIGNUP, "subdomain": "www"}
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}):

        def post(client_ip: str) -> int:
            return root.post(
                "/api/v1/signup",
                invalid,
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=f"203.0.113.9, {client_ip}",
            ).status_code

        assert post("198.51.100.1") == 400
        assert post("198.51.100.1") == 429
        assert post("198.51.100.2") == 400  # another client behind the same proxy


# -- hand-off token -----------------------------------------------------------------------


def test_handoff_token_works_once(client_a: Client, tenant_a: Tenant) -> None:
    token = handoff_issue(tenant_id=tenant_a.id, user_id=1)
    assert client_a.post("/auth/handoff/", {"token": token}).status_code == 302
    replay = Client(HTTP_HOST="alpha.localhost").post("/auth/handoff/", {"token": token})
    assert replay.status_code == 400
    assert b"already been used" in replay.content
    assert "sessionid" not in replay.cookies
    assert (
        Client(HTTP_HOST="alpha.localhost").get("/auth/handoff/", {"token": token}).status_code
        == 400
    )


def test_opening_a_handoff_link_signs_nobody_in_until_they_continue(
    tenant_a: Tenant,
) -> None:
    # Login CSRF: a link pushed into someone's browser must not sign it in by itself.
    token = handoff_issue(tenant_id=tenant_a.id, user_id=1)
    browser = Client(HTTP_HOST="alpha.localhost", enforce_csrf_checks=True)
    page = browser.get("/auth/handoff/", {"token": token})
    assert page.status_code == 200
    assert b'id="handoff-account">owner@alpha.test<' in page.content
    assert "sessionid" not in page.cookies
    assert browser.get("/").status_code == 302  # still anonymous

    forged_form = Client(HTTP_HOST="alpha.localhost", enforce_csrf_checks=True)
    assert forged_form.post("/auth/handoff/", {"token": token}).status_code == 403  # no CSRF

    continued = browser.post(
        "/auth/handoff/", {"token": token, "csrfmiddlewaretoken": page.context["csrf_token"]}
    )
    assert (continued.status_code, continued["Location"]) == (302, "/")
    assert browser.get("/").status_code == 200


def test_expired_handoff_token_is_refused(
    client_a: Client, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued_at = time.time() - 61
    monkeypatch.setattr(time, "time", lambda: issued_at)
    token = handoff_issue(tenant_id=tenant_a.id, user_id=1)
    monkeypatch.undo()
    response = client_a.get("/auth/handoff/", {"token": token})
    assert response.status_code == 400
    assert b"expired" in response.content
    assert client_a.post("/auth/handoff/", {"token": token}).status_code == 400


def test_handoff_token_of_tenant_a_is_refused_on_tenant_b(
    client_b: Client, tenant_a: Tenant
) -> None:
    token = handoff_issue(tenant_id=tenant_a.id, user_id=1)
    assert client_b.get("/auth/handoff/", {"token": token}).status_code == 400
    assert client_b.post("/auth/handoff/", {"token": token}).status_code == 400
    assert client_b.get("/").status_code == 302  # still anonymous


def test_forged_handoff_token_is_refused(client_a: Client) -> None:
    response = client_a.get("/auth/handoff/", {"token": "eyJ0IjoiIn0:forged:sig"})
    assert response.status_code == 400


# -- races --------------------------------------------------------------------------------


def test_two_concurrent_signups_for_one_subdomain_one_wins(db: None) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def sign_up(email: str) -> None:
        try:
            barrier.wait(timeout=10)
            tenant_create(
                name="Race",
                subdomain="photo-finish",
                owner_email=email,
                owner_password=TEST_PASSWORD,
            )
            outcomes.append("created")
        except SubdomainTakenError:
            outcomes.append("taken")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sign_up, args=(f"{n}@race.test",)) for n in (1, 2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["created", "taken"]
        with public_context():
            assert Tenant.objects.filter(subdomain="photo-finish").count() == 1
    finally:
        tenant_purge("photo-finish")


def test_signup_page_may_redirect_its_form_to_tenant_hosts(root: Client) -> None:
    # CSP form-action also governs the redirect that follows a submit
    policy = root.get("/signup/")["Content-Security-Policy"]
    assert "form-action 'self' *.localhost:*" in policy
    assert "form-action 'self';" in root.get("/")["Content-Security-Policy"] + ";"
