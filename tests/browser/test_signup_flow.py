"""A visitor creates a workspace in a real browser and lands in it, signed in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tests.factories import TEST_PASSWORD
from tests.fixtures import tenant_purge

pytestmark = pytest.mark.browser


def test_signup_form_lands_on_the_new_workspace_signed_in(
    db: None, live_url: str, page: Any, artifacts: Path
) -> None:
    try:
        page.goto(f"{live_url}/")
        page.screenshot(path=str(artifacts / "landing.png"), full_page=True)
        page.click("text=Create your workspace")

        page.fill("#id_name", "Acme Rockets")
        page.fill("#id_subdomain", "acme")
        page.fill("#id_email", "wile@acme.test")
        page.fill("#id_password", TEST_PASSWORD)
        page.click("button[type=submit]")

        # The new workspace names the account the link signs in; the owner continues.
        page.wait_for_selector("#handoff-continue", timeout=15_000)
        assert page.locator("#handoff-account").inner_text() == "wile@acme.test"
        page.screenshot(path=str(artifacts / "handoff.png"), full_page=True)
        page.click("#handoff-continue")
        page.wait_for_url(re.compile(r"^http://acme\.localhost:\d+/$"), timeout=15_000)
        assert page.locator("h1").inner_text() == "Welcome to Acme Rockets"
        assert "wile@acme.test" in page.content()
        page.screenshot(path=str(artifacts / "signed-in-workspace.png"), full_page=True)
    finally:
        tenant_purge("acme")


def test_invalid_subdomain_shows_its_error_beside_the_field(
    db: None, live_url: str, page: Any, artifacts: Path
) -> None:
    page.goto(f"{live_url}/signup/")
    page.fill("#id_name", "Bad Name Inc")
    page.fill("#id_subdomain", "9-lives-")
    page.fill("#id_email", "owner@bad.test")
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button[type=submit]")

    error = page.locator("#subdomain-errors")
    assert "must start with a letter" in error.inner_text()
    # the error sits right after the subdomain input, before the next field's label
    assert page.locator("#subdomain-help + #subdomain-errors").count() == 1
    assert page.input_value("#id_subdomain") == "9-lives-"
    page.screenshot(path=str(artifacts / "signup-invalid-subdomain.png"), full_page=True)
    with public_context():
        assert not Tenant.objects.filter(name="Bad Name Inc").exists()
