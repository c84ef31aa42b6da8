"""What a person sees on the workspace pages that share the form include, the error
catalogue, and the e-mails: each is opened in Chromium and kept as a screenshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared_apps.mail.services import mail_render
from shared_apps.tenants.models import Tenant
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.members.models import Invitation
from tenant_apps.projects.models import Project
from tests.factories import TEST_PASSWORD
from tests.fixtures import in_own_connection

pytestmark = pytest.mark.browser


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_auth-username", "owner@alpha.test")
    page.fill("#id_auth-password", TEST_PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/")


def test_an_owner_creates_a_project_a_task_and_an_invitation_through_the_pages(
    tenant_a: Tenant, live_url: str, page: Any, artifacts: Path
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")
    try:
        _sign_in(page, base)
        page.goto(f"{base}/projects/new/")
        page.screenshot(path=str(artifacts / "project-form.png"), full_page=True)
        page.fill("#id_name", "Launch plan")
        page.click("button:has-text('Save')")
        page.wait_for_selector("h1:has-text('Launch plan')")

        page.fill("#id_title", "Book the venue")
        page.click("button:has-text('Add task')")
        page.wait_for_selector("td:has-text('Book the venue')")
        floor_plan = {"name": "floor-plan.pdf", "mimeType": "application/pdf", "buffer": b"%PDF"}
        page.set_input_files("#id_file", files=[floor_plan])
        page.click("button:has-text('Upload')")
        page.wait_for_selector("#attachments a:has-text('floor-plan.pdf')")
        page.screenshot(path=str(artifacts / "project-detail.png"), full_page=True)

        page.goto(f"{base}/members/")
        page.fill("#id_email", "kim@alpha.test")
        page.click("button:has-text('Send invitation')")
        page.wait_for_selector("#invitations td:has-text('kim@alpha.test')")
        page.screenshot(path=str(artifacts / "members.png"), full_page=True)

        page.click("#invitations a:has-text('Withdraw')")
        page.wait_for_selector("#confirm")
        page.screenshot(path=str(artifacts / "confirm-withdraw.png"), full_page=True)
        page.click("#confirm button:has-text('Withdraw')")
        page.wait_for_selector("#no-invitations")

        page.goto(f"{base}/settings/api-keys/")
        page.fill("#id_name", "CI deploys")
        page.check("input[name=scopes][value=read]")
        page.click("button:has-text('Create key')")
        page.wait_for_selector("text=tp_")
        page.screenshot(path=str(artifacts / "api-key-created.png"), full_page=True)
        page.goto(f"{base}/settings/api-keys/")
        page.screenshot(path=str(artifacts / "api-keys.png"), full_page=True)
    finally:

        def forget() -> None:
            Project.objects.filter(name="Launch plan").delete()
            Invitation.objects.filter(email="kim@alpha.test").delete()
            ApiKey.objects.filter(name="CI deploys").delete()

        in_own_connection(forget, tenant_a)


def test_the_error_catalogue_page_lists_the_codes(
    live_url: str, page: Any, artifacts: Path
) -> None:
    page.goto(f"{live_url}/errors/#subdomain_taken")
    assert page.locator("#subdomain_taken td").first.inner_text() == "subdomain_taken"
    page.screenshot(path=str(artifacts / "errors.png"), full_page=True)


@pytest.mark.parametrize(
    ("template", "context"),
    [
        (
            "signup/mail/welcome",
            {"workspace": "Acme Rockets", "url": "https://acme.example.com/", "email": "w@a.test"},
        ),
        (
            "members/mail/invitation",
            {
                "workspace": "Acme Rockets",
                "inviter": "owner@acme.test",
                "url": "https://acme.example.com/invitations/accept/?token=t",
            },
        ),
    ],
)
def test_the_html_e_mails_render_as_a_person_reads_them(
    browser: Any, artifacts: Path, template: str, context: dict[str, str]
) -> None:
    mail = mail_render(to=["w@a.test"], template=template, context=context)
    page = browser.new_page()
    try:
        page.set_content(mail.html)
        button = page.locator("a", has_text="Open your workspace").or_(
            page.locator("a", has_text="Join the workspace")
        )
        assert button.get_attribute("href") == context["url"]
        page.screenshot(path=str(artifacts / f"mail-{template.rsplit('/', 1)[-1]}.png"))
    finally:
        page.close()
