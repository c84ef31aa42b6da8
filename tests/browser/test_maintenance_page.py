"""What a person sees on a workspace in maintenance (a release failed to migrate it): a
calm page that says it is being updated, kept as a screenshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from shared_apps.tenants.models import Tenant
from tenancy.host_routes import ROUTES
from tests.browser.test_billing_flow import in_own_connection

pytestmark = pytest.mark.browser


def _maintenance(tenant: Tenant, *, on: bool) -> None:
    def change() -> None:
        Tenant.objects.filter(pk=tenant.pk).update(
            quarantined_at=timezone.now() if on else None,
            quarantine_reason="migration failed: ValueError: boom" if on else "",
            quarantine_cause=Tenant.QuarantineCause.MIGRATION_FAILED if on else "",
        )

    in_own_connection(change)
    ROUTES.forget()


def test_a_workspace_in_maintenance_shows_a_page_that_says_it_is_being_updated(
    tenant_a: Tenant, live_url: str, page: Any, artifacts: Path
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")
    _maintenance(tenant_a, on=True)
    try:
        response = page.goto(f"{base}/login/")
        assert response.status == 503
        assert response.headers["retry-after"] == "300"
        assert page.locator("h1").inner_text() == "This workspace is being updated"
        page.screenshot(path=str(artifacts / "tenant-maintenance.png"), full_page=True)
    finally:
        _maintenance(tenant_a, on=False)
    assert page.goto(f"{base}/login/").status == 200
