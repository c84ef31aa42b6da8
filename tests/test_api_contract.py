"""The API's contract: the OpenAPI 3.1 document (served, committed, complete), and the API
held to it over HTTP by schemathesis on a workspace of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from django.test import Client
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.api.reference import api_schema
from core.errors import error_catalogue
from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.fleet.creation import tenant_create
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.apikeys.services import api_key_create
from tenant_apps.projects.models import Project, Task
from tests.factories import TEST_PASSWORD
from tests.fixtures import in_own_connection, tenant_purge

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
PROBLEM = "application/problem+json"
METHODS = ("get", "post", "put", "patch", "delete")


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


# THE DOCUMENT ---------------------------------------------------------------------------


def test_the_committed_document_is_the_one_the_code_makes() -> None:
    assert yaml.safe_load(COMMITTED.read_text()) == api_schema(), "run `make schema`"


def test_the_document_is_openapi_3_1_and_names_every_operation_once() -> None:
    schema = api_schema()
    assert schema["openapi"] == "3.1.0"
    ids = [operation["operationId"] for _, _, operation in operations(schema)]
    assert len(ids) == len(set(ids))
    assert {"project_list", "project_create", "task_update"} <= set(ids)


def test_every_operation_has_its_bodies_its_problems_and_the_ratelimit_fields() -> None:
    schema = api_schema()
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        successes = [status for status in responses if status.startswith("2")]
        assert len(successes) == 1, where
        if successes != ["204"]:  # No Content has no body
            assert "application/json" in responses[successes[0]]["content"], where
        if method in ("post", "put", "patch") and "requestBody" in operation:
            # JSON, except a file upload; a POST that takes nothing (resend) has no body
            assert set(operation["requestBody"]["content"]) & {
                "application/json",
                "multipart/form-data",
            }, where
        problems = {status: answer for status, answer in responses.items() if status >= "400"}
        assert {"401", "403", "404", "429"} <= set(problems), where
        for status, answer in problems.items():
            assert answer["content"] == {
                PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, f"{where} {status}"
        for status, answer in responses.items():
            assert "RateLimit-Remaining" in answer["headers"], f"{where} {status}"
        assert "Retry-After" in responses["429"]["headers"], where
        assert "WWW-Authenticate" in responses["401"]["headers"], where
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert ("Idempotency-Key" in headers) == (method == "post"), where


def test_the_problem_schema_enumerates_every_stable_code() -> None:
    components = api_schema()["components"]
    problem = components["schemas"]["Problem"]
    assert set(problem["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "code",
        "errors",
    }
    assert components["schemas"]["ProblemCode"]["enum"] == list(error_catalogue())
    assert "apiKey" in components["securitySchemes"]


# SERVED ---------------------------------------------------------------------------------


def test_the_document_is_served_to_anyone_on_a_workspace_host(client_a: Client) -> None:
    response = client_a.get("/api/v1/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(response.content) == yaml.safe_load(COMMITTED.read_text())
    assert "RateLimit-Remaining" in response  # counted like any other request
    as_json = client_a.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert as_json.json()["openapi"] == "3.1.0"


def test_a_refusal_of_the_document_is_a_json_problem(client_a: Client) -> None:
    response = client_a.get("/api/v1/schema/", HTTP_ACCEPT="text/csv")
    assert (response.status_code, response["Content-Type"]) == (406, PROBLEM)
    assert response.json()["code"] == "not_acceptable"


def test_the_document_names_no_workspace(client_a: Client, tenant_a: Tenant) -> None:
    text = client_a.get("/api/v1/schema/").content.decode()
    assert tenant_a.subdomain not in text
    assert tenant_a.name not in text


def test_the_document_and_its_page_are_not_on_the_root_host(root: Client) -> None:
    for path in ("/api/v1/schema/", "/api/v1/docs/"):
        response = root.get(path)
        assert (response.status_code, response["Content-Type"]) == (404, PROBLEM)


def test_the_reference_page_loads_its_scripts_from_this_host(client_a: Client) -> None:
    page = client_a.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn." not in html
    assert "https://" not in html
    assert "<script>" not in html  # no inline script for the CSP to refuse
    script = client_a.get("/api/v1/docs/?script=")
    assert script["Content-Type"] == "application/javascript"
    assert b'url: "/api/v1/schema/"' in script.content


# HELD TO IT OVER HTTP -------------------------------------------------------------------

CONTRACT = "contract"


def _contract_forget() -> None:
    """Remove the contract workspace, its rows and its audit records (all committed)."""
    tenant_purge(CONTRACT)

    def audit_forget() -> None:
        AuditRecord.objects.filter(subdomain=CONTRACT).delete()

    in_own_connection(audit_forget)


@pytest.fixture(scope="module")
def contract_workspace(live_url: str, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """A workspace of its own, committed, with an admin key, a project and a task; removed
    after this module with whatever the run created, so that later tests see the fleet and
    the audit trail as they were."""
    made: dict[str, Any] = {}

    def build() -> None:
        tenant = tenant_create(
            name="Contract",
            subdomain=CONTRACT,
            owner_email="owner@contract.test",
            owner_password=TEST_PASSWORD,
        ).tenant
        with tenant_context(tenant):
            owner = User.objects.get(email="owner@contract.test")
            made["key"] = api_key_create(actor=owner, name="contract", scopes=["admin"])[1]
            project = Project.objects.create(name="Seeded")
            made["project_id"] = project.pk
            made["task_id"] = Task.objects.create(project=project, title="Seeded").pk

    with django_db_blocker.unblock():
        _contract_forget()
        in_own_connection(build)
    # *.localhost resolves in browsers, not everywhere: connect to the address, name the host.
    made["base_url"] = live_url.replace("localhost", "127.0.0.1")
    made["headers"] = {
        "Host": f"{CONTRACT}.localhost:{live_url.rsplit(':', 1)[1]}",
        "Authorization": f"Bearer {made['key']}",
    }
    yield made
    with django_db_blocker.unblock():
        _contract_forget()
        with public_context():
            assert not Tenant.objects.filter(subdomain=CONTRACT).exists()
            assert not AuditRecord.objects.filter(subdomain=CONTRACT).exists()


@pytest.fixture
def live_api(db: None, contract_workspace: dict[str, Any], settings: Any) -> dict[str, Any]:
    """The contract workspace, with the live server's threads let into the database (`db`)."""
    # Budgets are not what this run is about (they have their own tests).
    settings.API_RATE_LIMITS = {"key": 100_000, "user": 100_000, "address": 100_000}
    return contract_workspace


# The published document (docs/openapi.yaml; the tests above prove the server serves the
# same and the code makes the same). Loaded at collection: one test per operation.
schema = schemathesis.openapi.from_path(str(COMMITTED))
# Bodies, parameters and headers that fit the document, and ones that do not (which must be
# refused with a documented 4xx, never a 5xx).
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=20, deterministic=True
)


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,  # the same examples every run
    database=None,
    deadline=None,
    phases=[Phase.generate],  # no explicit or coverage phases: at most 20 requests each
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_contract(case: Any, live_api: dict[str, Any]) -> None:
    # Half the generated ids are swapped for the seeded rows, so answers other than 404 are
    # held to the document too.
    for name in ("project_id", "task_id"):
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = live_api[name]
    case.call_and_validate(
        base_url=live_api["base_url"],
        headers=live_api["headers"],
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
        timeout=10,
    )
