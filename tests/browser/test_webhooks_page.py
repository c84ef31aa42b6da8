"""The webhooks page as an owner uses it in Chromium: add an endpoint, copy its secret once,
read the delivery log, send a failed delivery again; and the e-mail owners get when an
endpoint is disabled. Each step is kept as a screenshot."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from shared_apps.mail.services import mail_render
from shared_apps.tenants.models import Tenant
from tenant_apps.webhooks.models import Delivery, Endpoint
from tests.browser.test_billing_flow import in_own_connection
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_auth-username", "owner@alpha.test")
    page.fill("#id_auth-password", TEST_PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/")


def _log_of(endpoint_url: str) -> None:
    """A delivered, a failed and a retrying delivery for the endpoint (committed)."""
    endpoint = Endpoint.objects.get(url=endpoint_url)
    now = timezone.now()
    rows = [
        ("task.updated", "delivered", 1, 200, "", now - timedelta(minutes=42)),
        (
            "project.created",
            "failed",
            8,
            500,
            "The receiver answered 500.",
            now - timedelta(hours=4),
        ),
        ("task.created", "pending", 2, None, "The receiver did not answer in time.", now),
    ]
    for event_type, status, attempts, code, error, at in rows:
        event_id = uuid.uuid4()
        Delivery.objects.create(
            endpoint=endpoint,
            event_id=event_id,
            event_type=event_type,
            body=f'{{"id":"msg_{event_id.hex}","type":"{event_type}","data":{{}}}}',
            status=status,
            attempts=attempts,
            last_status_code=code,
            last_error=error,
            last_attempt_at=at,
            next_attempt_at=now + timedelta(minutes=2) if status == "pending" else None,
            delivered_at=at if status == "delivered" else None,
            created_at=at,
        )


def test_an_owner_adds_an_endpoint_and_reads_its_delivery_log(
    tenant_a: Tenant, live_url: str, page: Any, artifacts: Path
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")
    url = "http://127.0.0.1:9/hooks/alpha"
    try:
        _sign_in(page, base)
        page.click("#webhooks-link")
        page.wait_for_selector("#no-endpoints")
        page.fill("#id_url", url)
        page.fill("#id_description", "CRM sync")
        page.check("input[name=events][value='project.created']")
        page.check("input[name=events][value='task.updated']")
        page.screenshot(path=str(artifacts / "webhooks-empty.png"), full_page=True)
        page.click("button:has-text('Add endpoint')")
        page.wait_for_selector("#webhook-secret-value")
        assert page.inner_text("#webhook-secret-value").startswith("whsec_")
        page.screenshot(path=str(artifacts / "webhook-secret.png"), full_page=True)

        in_own_connection(lambda: _log_of(url), tenant_a)
        page.goto(f"{base}/settings/webhooks/")
        page.wait_for_selector("#deliveries")
        page.screenshot(path=str(artifacts / "webhooks.png"), full_page=True)

        page.click("#endpoints a:has-text('Deliveries and settings')")
        page.wait_for_selector("#endpoint-url")
        assert page.locator("#deliveries tbody tr").count() == 3
        page.screenshot(path=str(artifacts / "webhook-endpoint.png"), full_page=True)

        page.click("#deliveries button:has-text('Send again') >> nth=1")
        page.wait_for_selector(".messages:has-text('is being sent again')")
        assert page.locator("#deliveries tbody tr").count() == 4
        page.screenshot(path=str(artifacts / "webhook-sent-again.png"), full_page=True)

        page.click("button:has-text('Disable')")
        page.wait_for_selector("#endpoint-status:has-text('Disabled by an owner')")
        page.screenshot(path=str(artifacts / "webhook-disabled.png"), full_page=True)
    finally:
        in_own_connection(lambda: Endpoint.objects.filter(url=url).delete(), tenant_a)


def test_the_endpoint_disabled_e_mail_renders_as_an_owner_reads_it(
    browser: Any, artifacts: Path
) -> None:
    context = {
        "workspace": "Acme Rockets",
        "endpoint": "https://crm.example.com/hooks/acme",
        "reason": "after failing repeatedly",
        "failures": 10,
        "failing_since": timezone.now() - timedelta(hours=13),
        "url": "https://acme.example.com/settings/webhooks/3/",
    }
    mail = mail_render(to=["o@a.test"], template="webhooks/mail/endpoint_disabled", context=context)
    page = browser.new_page()
    try:
        page.set_content(mail.html)
        button = page.locator("a", has_text="Open the endpoint")
        assert button.get_attribute("href") == context["url"]
        page.screenshot(path=str(artifacts / "mail-endpoint-disabled.png"))
    finally:
        page.close()
