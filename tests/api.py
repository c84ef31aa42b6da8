"""Calling a workspace's API from tests: JSON bodies, problem answers, clients by role."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tests.factories import UserFactory
from tests.fixtures import browser_for

PROBLEM = "application/problem+json"


def post_json(client: Client, path: str, body: Any, **extra: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def patch_json(client: Client, path: str, body: Any, **extra: Any) -> Any:
    return client.patch(path, json.dumps(body), content_type="application/json", **extra)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json answer of `status` and `code`; return its body."""
    assert (response.status_code, response["Content-Type"]) == (status, PROBLEM), response.content
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def field_errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field, code) pairs of a validation problem."""
    return [(error["field"], error["code"]) for error in body["errors"]]


def signed_in_as(tenant: Tenant, role: str, **fields: Any) -> tuple[Client, User]:
    """A browser on the tenant's host, signed in as a new person of that role."""
    from tenancy import tenant_context

    with tenant_context(tenant):
        person = UserFactory.create(role=role, **fields)
    return browser_for(tenant, person), person
