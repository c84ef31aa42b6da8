from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.db import IntegrityError

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tests.factories import TEST_PASSWORD, UserFactory


def test_email_is_unique_case_insensitively_by_the_database(in_tenant_a: Tenant) -> None:
    User.objects.create(email="Ann@Example.test")  # bypasses normalisation on purpose
    with pytest.raises(IntegrityError, match="user_email_ci_unique"):
        User.objects.create(email="ann@example.TEST")


def test_emails_are_stored_lower_case(in_tenant_a: Tenant) -> None:
    user = User.objects.create_user(" Bob@Example.Test ", TEST_PASSWORD)
    assert user.email == "bob@example.test"


def test_sign_in_matches_email_case_insensitively(in_tenant_a: Tenant) -> None:
    UserFactory(email="carol@example.test")
    user = authenticate(username="CAROL@example.test", password=TEST_PASSWORD)
    assert user is not None
    assert user.email == "carol@example.test"
    assert authenticate(username="carol@example.test", password="wrong") is None
