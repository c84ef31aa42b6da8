from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.apikeys.errors import ApiKeyInvalidError, ApiKeyScopeNotAllowedError
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.apikeys.services import api_key_create, api_key_revoke
from tenant_apps.apikeys.tests.helpers import key_in, owner_of
from tests.factories import UserFactory


def _audit(action: str) -> list[tuple[str, str, str]]:
    with public_context():
        return [
            (r.outcome, r.actor, r.detail.get("key_prefix", ""))
            for r in AuditRecord.objects.filter(action=action).order_by("created_at")
        ]


def test_create_returns_the_key_once_and_stores_only_its_hash(tenant_a: Tenant) -> None:
    key, plaintext = key_in(tenant_a, scopes=["read"])

    assert plaintext.startswith(f"{key.prefix}_")
    assert key.prefix.startswith("tp_")
    assert len(key.prefix) == 11
    with tenant_context(tenant_a):
        stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    secret = plaintext[len(key.prefix) + 1 :]
    stored_text = " ".join(str(getattr(stored, f.attname)) for f in ApiKey._meta.concrete_fields)
    assert secret not in stored_text
    assert stored.scopes == ["read"]


def test_create_and_revoke_are_audited_with_the_prefix(tenant_a: Tenant) -> None:
    owner = owner_of(tenant_a)
    key, _ = key_in(tenant_a, scopes=["write"], actor=owner)
    with tenant_context(tenant_a):
        api_key_revoke(actor=owner, key=key)
        api_key_revoke(actor=owner, key=key)  # twice is no error

    assert _audit("apikey.create") == [("succeeded", f"user:{owner.email}", key.prefix)]
    assert [outcome for outcome, *_ in _audit("apikey.revoke")] == ["succeeded", "succeeded"]
    with tenant_context(tenant_a):
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_an_admin_cannot_mint_an_admin_scope_key(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        admin = UserFactory.create(role=User.Role.ADMIN)
        with pytest.raises(ApiKeyScopeNotAllowedError):
            api_key_create(actor=admin, name="too strong", scopes=["read", "admin"])
        assert ApiKey.objects.count() == 0
        key, _ = api_key_create(actor=admin, name="fine", scopes=["write"])
    assert key.scopes == ["write"]
    outcomes = [outcome for outcome, *_ in _audit("apikey.create")]
    assert outcomes == ["failed", "succeeded"]


def test_an_owner_may_mint_an_admin_scope_key(tenant_a: Tenant) -> None:
    key, _ = key_in(tenant_a, scopes=["admin"])
    assert key.scopes == ["admin"]


def test_a_member_cannot_create_or_revoke_keys(tenant_a: Tenant) -> None:
    key, _ = key_in(tenant_a, scopes=["read"])
    with tenant_context(tenant_a):
        member = UserFactory.create(role=User.Role.MEMBER)
        with pytest.raises(PermissionDenied):
            api_key_create(actor=member, name="x", scopes=["read"])
        with pytest.raises(PermissionDenied):
            api_key_revoke(actor=member, key=key)
        assert ApiKey.objects.get(pk=key.pk).revoked_at is None
        assert ApiKey.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "scopes", "days"),
    [("", ["read"], None), ("x", [], None), ("x", ["sudo"], None), ("x", ["read"], -1)],
)
def test_create_refuses_bad_input(
    tenant_a: Tenant, name: str, scopes: list[str], days: int | None
) -> None:
    owner = owner_of(tenant_a)
    expires_at = timezone.now() + timedelta(days=days) if days is not None else None
    with tenant_context(tenant_a):
        with pytest.raises(ApiKeyInvalidError):
            api_key_create(actor=owner, name=name, scopes=scopes, expires_at=expires_at)
        assert ApiKey.objects.count() == 0
