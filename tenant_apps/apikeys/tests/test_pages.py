from __future__ import annotations

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.apikeys.tests.helpers import key_in, owner_of
from tests.factories import UserFactory
from tests.fixtures import TENANT_A, browser_for
from tests.test_admin import verified_client


def test_a_member_cannot_open_the_keys_page(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        member = UserFactory.create(role=User.Role.MEMBER)
    client = browser_for(tenant_a, member)
    assert client.get("/settings/api-keys/").status_code == 403
    response = client.post("/settings/api-keys/new/", {"name": "x", "scopes": ["read"]})
    assert response.status_code == 403
    with tenant_context(tenant_a):
        assert ApiKey.objects.count() == 0
    assert b"api-keys-link" not in client.get("/").content


def test_an_owner_creates_a_key_and_sees_it_once(tenant_a: Tenant) -> None:
    client = browser_for(tenant_a, owner_of(tenant_a))
    assert b"api-keys-link" in client.get("/").content

    created = client.post("/settings/api-keys/new/", {"name": "Deploys", "scopes": ["write"]})

    assert created.status_code == 201
    plaintext = created.context["plaintext"]
    assert plaintext.encode() in created.content
    listing = client.get("/settings/api-keys/")
    assert listing.status_code == 200
    with tenant_context(tenant_a):
        key = ApiKey.objects.get()
    assert key.prefix.encode() in listing.content
    assert plaintext.encode() not in listing.content


def test_an_admin_is_offered_no_admin_scope_and_refused_it(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        admin = UserFactory.create(role=User.Role.ADMIN)
    client = browser_for(tenant_a, admin)
    page = client.get("/settings/api-keys/")
    assert page.status_code == 200
    assert b'value="admin"' not in page.content
    refused = client.post("/settings/api-keys/new/", {"name": "x", "scopes": ["admin"]})
    assert refused.status_code == 400
    with tenant_context(tenant_a):
        assert ApiKey.objects.count() == 0


def test_revoke_asks_first_then_revokes(tenant_a: Tenant) -> None:
    key, _ = key_in(tenant_a, scopes=["read"])
    client = browser_for(tenant_a, owner_of(tenant_a))
    confirm = client.get(f"/settings/api-keys/{key.pk}/revoke/")
    assert confirm.status_code == 200
    assert b'id="confirm"' in confirm.content
    with tenant_context(tenant_a):
        assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    done = client.post(f"/settings/api-keys/{key.pk}/revoke/")
    assert done.status_code == 302
    with tenant_context(tenant_a):
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_the_workspace_admin_revokes_keys_through_the_service(tenant_a: Tenant) -> None:
    key, _ = key_in(tenant_a, scopes=["read"])
    with tenant_context(tenant_a):
        client = verified_client(TENANT_A.host, TENANT_A.owner_email)
    listing = client.get("/admin/apikeys/apikey/")
    assert listing.status_code == 200
    assert key.prefix.encode() in listing.content
    client.post(
        "/admin/apikeys/apikey/",
        {"action": "revoke", "_selected_action": [key.pk], "post": "yes"},
    )
    with tenant_context(tenant_a):
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
