"""The same security headers on every kind of response the platform sends, the routing
middleware's own answers included."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from django.test import Client, override_settings

from core.logging import JsonLineFormatter
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.services import tenant_suspend
from tests.factories import DomainFactory, TenantFactory

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _unreachable_workspace() -> Client:
    # Routed and active, but its schema is missing: the 503 page, never public tables.
    tenant = TenantFactory.create(subdomain="ghost", status=Tenant.Status.ACTIVE)
    DomainFactory.create(tenant=tenant, domain="ghost.localhost")
    return Client(HTTP_HOST="ghost.localhost", raise_request_exception=False)


def _suspended(tenant_b: Tenant) -> Client:
    tenant_suspend(tenant=tenant_b, reason="test", actor="test")
    return Client(HTTP_HOST="beta.localhost")


SIGN_IN = {"login_view-current_step": "auth", "auth-username": "x@y.test", "auth-password": "x"}

RESPONSES: dict[str, tuple[Callable[..., Client], str, int]] = {
    "landing": (lambda **_: Client(HTTP_HOST="localhost"), "/", 200),
    "signup page": (lambda **_: Client(HTTP_HOST="localhost"), "/signup/", 200),
    "api problem": (lambda **_: Client(HTTP_HOST="localhost"), "/api/v1/nothing", 404),
    "errors page": (lambda **_: Client(HTTP_HOST="localhost"), "/errors/", 200),
    "workspace sign-in": (lambda **_: Client(HTTP_HOST="alpha.localhost"), "/login/", 200),
    "workspace health": (lambda **_: Client(HTTP_HOST="alpha.localhost"), "/health/", 200),
    "unknown workspace": (lambda **_: Client(HTTP_HOST="nobody.localhost"), "/", 404),
    "bad host": (lambda **_: Client(HTTP_HOST="evil.example.org"), "/", 400),
    "suspended page": (lambda tenant_b, **_: _suspended(tenant_b), "/", 403),
    "suspended api": (lambda tenant_b, **_: _suspended(tenant_b), "/api/v1/projects", 403),
    # A sign-in attempt reads the workspace's users: the schema is needed, and missing.
    "unreachable workspace": (lambda **_: _unreachable_workspace(), "POST /login/", 503),
}


@pytest.mark.parametrize("kind", list(RESPONSES))
def test_every_kind_of_response_carries_the_security_headers(
    kind: str, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    make_client, path, status = RESPONSES[kind]
    client = make_client(tenant_b=tenant_b)
    if path.startswith("POST "):
        response = client.post(path.removeprefix("POST "), SIGN_IN)
    else:
        response = client.get(path)
    assert response.status_code == status
    assert {name: response.get(name) for name in HEADERS} == HEADERS
    if response["Content-Type"].startswith("text/html"):
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=3600)
@pytest.mark.parametrize("host", ["localhost", "alpha.localhost", "nobody.localhost"])
def test_in_production_every_host_redirects_to_https_and_sends_hsts(
    host: str, tenant_a: Tenant
) -> None:
    plain = Client(HTTP_HOST=host).get("/")
    assert (plain.status_code, plain["Location"]) == (301, f"https://{host}/")
    secure = Client(HTTP_HOST=host).get("/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=3600"


def test_request_log_lines_never_carry_a_token(
    tenant_a: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "eyJzZWNyZXQiOiJ0b2tlbiJ9:1abc:signature-part"
    client = Client(HTTP_HOST="alpha.localhost")
    with caplog.at_level(logging.WARNING):
        client.get(f"/auth/handoff/?token={secret}&next=/")
        client.get(f"/files/{secret}/")
        client.get(f"/invitations/accept/?token={secret}")
    formatted = [JsonLineFormatter().format(record) for record in caplog.records]
    assert formatted  # the 400s and 404s were logged
    assert not [line for line in formatted if "signature-part" in line]
    assert any("token=[redacted]" in line for line in formatted)
    assert any("/files/[redacted]" in line for line in formatted)
