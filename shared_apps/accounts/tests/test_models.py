from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.db import IntegrityError

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tests.factories import TEST_PASSWORD, UserFactory
from tests.fixtures import sign_in_request


def test_email_is_unique_case_insensitively_by_the_database(in_tenant_a: Tenant) -> None:
    User.objects.create(email="Ann@Example.test")  # bypasses normalisation on purpose
    with pytest.raises(IntegrityError, match="user_email_ci_unique"):
        User.objects.create(email="ann@example.TEST")


def test_emails_are_stored_lower_case(in_tenant_a: Tenant) -> None:
    user = User.objects.create_user(" Bob@Example.Test ", TEST_PASSWORD)  # the manager under test
    assert user.email == "bob@example.test"


def test_sign_in_matches_email_case_insensitively(in_tenant_a: Tenant) -> None:
    UserFactory.create(email="carol@example.test")
    user = authenticate(sign_in_request(), username="CAROL@example.test", password=TEST_PASSWORD)
    assert user is not None
    assert user.email == "carol@example.test"
    assert authenticate(sign_in_request(), username="carol@example.test", password="wrong") is None


def test_passwords_are_hashed_with_owasp_argon2id(settings: Any) -> None:
    from django.contrib.auth.hashers import identify_hasher, make_password

    from config.settings import base

    settings.PASSWORD_HASHERS = base.PASSWORD_HASHERS  # production's, not the tests' fast one
    encoded = make_password("correct horse battery staple")
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert identify_hasher(encoded).verify("correct horse battery staple", encoded)
