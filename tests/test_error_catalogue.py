"""One error catalogue: every code in the code base is documented, and names match codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from core.errors import AppError, error_catalogue

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def _documented() -> dict[str, int]:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", DOC.read_text(), flags=re.MULTILINE)
    return {code: int(status) for code, status in rows}


def _app_error_classes() -> list[type[AppError]]:
    error_catalogue()  # imports every app's errors module
    found, pending = [], list(AppError.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_code_is_in_docs_errors_with_its_status() -> None:
    documented = _documented()
    catalogue = {code: status for code, (status, _title) in error_catalogue().items()}
    assert {code: documented.get(code) for code in catalogue} == catalogue
    assert sorted(set(documented) - set(catalogue)) == []  # nothing documented that is gone


def test_error_class_names_match_their_codes() -> None:
    mismatched = {
        cls.__name__: cls.code
        for cls in _app_error_classes()
        if cls.__name__ != "".join(part.title() for part in cls.code.split("_")) + "Error"
    }
    assert mismatched == {}


def test_the_errors_page_lists_every_code_with_an_anchor(root: Client) -> None:
    response = root.get("/errors/")
    assert response.status_code == 200
    for code in error_catalogue():
        assert f'id="{code}"'.encode() in response.content


PROBLEM = "application/problem+json"


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unknown_api_path_answers_problem_json_on_a_workspace(
    client_a: Client, method: str
) -> None:
    response = getattr(client_a, method)("/api/v1/nothing-here/")
    assert (response.status_code, response["Content-Type"]) == (404, PROBLEM)
    body = response.json()
    assert (body["code"], body["instance"]) == ("not_found", "/api/v1/nothing-here/")
    assert body["type"] == "http://alpha.localhost/errors/#not_found"


def test_an_unknown_api_path_answers_problem_json_on_the_root_site(root: Client) -> None:
    response = root.get("/api/v2/signup")
    assert (response.status_code, response["Content-Type"]) == (404, PROBLEM)
    assert response.json()["type"] == "http://localhost:8000/errors/#not_found"


def test_a_wrong_method_answers_problem_json(root: Client) -> None:
    response = root.get("/api/v1/signup")
    assert (response.status_code, response["Content-Type"]) == (405, PROBLEM)
    assert response.json()["code"] == "method_not_allowed"


def test_an_unknown_workspace_answers_problem_json_under_api(db: None) -> None:
    response = Client(HTTP_HOST="nobody.localhost").get("/api/v1/projects")
    assert (response.status_code, response["Content-Type"]) == (404, PROBLEM)
    assert response.json()["code"] == "tenant_not_found"
    page = Client(HTTP_HOST="nobody.localhost").get("/projects/")
    assert (page.status_code, page["Content-Type"]) == (404, "text/html; charset=utf-8")
