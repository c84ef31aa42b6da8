from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.apikeys.services import api_key_revoke
from tenant_apps.apikeys.tests.helpers import bearer, key_in, owner_of
from tenant_apps.projects.models import Project
from tests.factories import UserFactory

PROBLEM = "application/problem+json"
BODY = {"name": "From CI"}


def _post(client: Client, plaintext: str) -> Any:
    return client.post(
        "/api/v1/projects", BODY, content_type="application/json", headers=bearer(plaintext)
    )


def _projects(tenant: Tenant) -> int:
    with tenant_context(tenant):
        return Project.objects.count()


def test_a_write_key_creates_a_project_on_its_own_host(client_a: Client, tenant_a: Tenant) -> None:
    _key, plaintext = key_in(tenant_a, scopes=["write"])
    response = _post(client_a, plaintext)
    assert response.status_code == 201, response.content
    with tenant_context(tenant_a):
        project = Project.objects.get()
    assert project.name == "From CI"


def test_a_key_of_a_is_unknown_on_b_with_one_query(
    client_a: Client,
    client_b: Client,
    tenant_a: Tenant,
    tenant_b: Tenant,
    django_assert_num_queries,
) -> None:
    _, plaintext = key_in(tenant_a, scopes=["admin"])
    _post(client_b, plaintext)  # warm: B's route, schema and settings are known to this process
    # B's search path, then the lookup: the one query on B's tables, and no write.
    with django_assert_num_queries(2) as captured:
        response = _post(client_b, plaintext)
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "authentication_failed"
    search_path, lookup = (query["sql"] for query in captured.captured_queries)
    assert "set_config('search_path'" in search_path
    assert lookup.startswith('SELECT "apikeys_apikey"')
    assert _projects(tenant_b) == 0


def test_a_wrong_secret_is_refused(client_a: Client, tenant_a: Tenant) -> None:
    _key, plaintext = key_in(tenant_a, scopes=["write"])
    response = _post(client_a, plaintext[:-2] + ("AA" if not plaintext.endswith("AA") else "BB"))
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert _projects(tenant_a) == 0


def test_a_revoked_key_is_refused(client_a: Client, tenant_a: Tenant) -> None:
    key, plaintext = key_in(tenant_a, scopes=["write"])
    with tenant_context(tenant_a):
        api_key_revoke(actor=owner_of(tenant_a), key=key)
    response = _post(client_a, plaintext)
    assert response.status_code == 401
    body = response.json()
    assert (body["code"], body["detail"]) == ("authentication_failed", "This API key was revoked.")
    assert _projects(tenant_a) == 0


def test_an_expired_key_is_refused(client_a: Client, tenant_a: Tenant) -> None:
    key, plaintext = key_in(
        tenant_a, scopes=["write"], expires_at=timezone.now() + timedelta(days=1)
    )
    with tenant_context(tenant_a):
        ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _post(client_a, plaintext)
    assert response.status_code == 401
    body = response.json()
    assert (body["code"], body["detail"]) == ("authentication_failed", "This API key has expired.")
    assert _projects(tenant_a) == 0


def test_a_key_stops_when_its_creator_leaves(client_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        admin = UserFactory.create(role=User.Role.ADMIN)
    _, plaintext = key_in(tenant_a, scopes=["write"], actor=admin)
    with tenant_context(tenant_a):
        User.objects.filter(pk=admin.pk).update(is_active=False)
    response = _post(client_a, plaintext)
    assert response.status_code == 401
    assert _projects(tenant_a) == 0


def test_a_malformed_bearer_token_is_refused(client_a: Client, tenant_a: Tenant) -> None:
    response = _post(client_a, "not-a-key")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_refused_key_is_a_401_with_a_bearer_challenge(client_a: Client, tenant_a: Tenant) -> None:
    response = _post(client_a, "tp_abcdefgh_made-up")
    assert (response.status_code, response["Content-Type"]) == (401, PROBLEM)
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


def test_no_credentials_is_a_401_with_a_bearer_challenge(client_a: Client) -> None:
    response = client_a.post("/api/v1/projects", BODY, content_type="application/json")
    assert (response.status_code, response["Content-Type"]) == (401, PROBLEM)
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_key_wins_over_a_session_sent_with_it(owner_a: Client, tenant_a: Tenant) -> None:
    # The signed-in owner's cookie does not rescue a refused key: the key is what was meant.
    response = _post(owner_a, "tp_abcdefgh_made-up")
    assert response.status_code == 401
    assert _projects(tenant_a) == 0


def test_a_read_key_cannot_post(client_a: Client, tenant_a: Tenant) -> None:
    _, plaintext = key_in(tenant_a, scopes=["read"])
    response = _post(client_a, plaintext)
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "permission_denied"
    assert _projects(tenant_a) == 0


def test_a_key_never_exceeds_its_creators_role(client_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        admin = UserFactory.create(role=User.Role.ADMIN)
    _, plaintext = key_in(tenant_a, scopes=["write"], actor=admin)
    with tenant_context(tenant_a):
        User.objects.filter(pk=admin.pk).update(
            role=User.Role.MEMBER
        )  # members cannot create projects
    response = _post(client_a, plaintext)
    assert response.status_code == 403
    assert _projects(tenant_a) == 0


def test_last_used_at_is_written_at_most_once_a_minute(client_a: Client, tenant_a: Tenant) -> None:
    key, plaintext = key_in(tenant_a, scopes=["read"])

    def last_used() -> Any:
        with tenant_context(tenant_a):
            return ApiKey.objects.get(pk=key.pk).last_used_at

    client_a.get("/api/v1/projects", headers=bearer(plaintext))
    first = last_used()
    assert first is not None
    client_a.get("/api/v1/projects", headers=bearer(plaintext))
    assert last_used() == first  # within the minute: no write

    with tenant_context(tenant_a):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(seconds=61))
    client_a.get("/api/v1/projects", headers=bearer(plaintext))
    assert last_used() > first
