"""The API reference page: Swagger UI from the platform's own static files, under the
platform's Content-Security-Policy, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared_apps.tenants.models import Tenant

pytestmark = pytest.mark.browser


def test_the_api_reference_renders_every_operation_offline_under_the_csp(
    tenant_a: Tenant, live_url: str, page: Any, artifacts: Path
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")
    hosts: set[str] = set()
    problems: list[str] = []
    page.on("request", lambda request: hosts.add(urlsplit(request.url).hostname or ""))

    def on_console(message: Any) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{base}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    paths = page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
    page.screenshot(path=str(artifacts / "api-docs.png"), full_page=True)

    assert "/api/v1/projects" in paths
    assert "/api/v1/projects/{project_id}/tasks/{task_id}" in paths
    assert hosts == {"alpha.localhost"}  # nothing fetched from anywhere else
    assert problems == []  # no script error, no Content-Security-Policy refusal


def test_the_api_reference_shows_the_problem_schema(
    tenant_a: Tenant, live_url: str, page: Any, artifacts: Path
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")
    page.goto(f"{base}/api/v1/docs/#/projects/project_create")
    page.wait_for_selector("#operations-projects-project_create .responses-table")
    box = page.locator("#operations-projects-project_create").bounding_box()
    page.screenshot(
        path=str(artifacts / "api-docs-operation.png"),
        full_page=True,
        clip={"x": 0, "y": box["y"] - 20, "width": 1280, "height": 1400},
    )
    text = page.locator("#operations-projects-project_create").inner_text()
    assert "Idempotency-Key" in text
    assert "application/problem+json" in text or "Problem" in text
