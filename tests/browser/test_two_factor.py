"""An owner enrolls an authenticator app, signs in again with its code and reaches the admin."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django_otp.oath import totp

from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.browser


def code_for(secret: str) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key):06d}"


def forget_devices(tenant: Tenant) -> None:
    """The live server committed the enrollment; remove it from another connection."""

    def work() -> None:
        from axes.models import AccessAttempt
        from django_otp.plugins.otp_static.models import StaticDevice
        from django_otp.plugins.otp_totp.models import TOTPDevice

        try:
            with tenant_context(tenant):
                TOTPDevice.objects.all().delete()
                StaticDevice.objects.all().delete()
                AccessAttempt.objects.all().delete()
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def sign_in_with_password(page: Any, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_auth-username", "owner@alpha.test")
    page.fill("#id_auth-password", TEST_PASSWORD)
    page.click("#sign-in")


def test_owner_enrolls_totp_and_signs_in_with_it(
    db: None, tenant_a: Tenant, live_url: str, page: Any, artifacts: Path
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")
    try:
        # the admin first demands a device
        sign_in_with_password(page, base)
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/admin/")
        page.wait_for_url(f"{base}/account/two_factor/setup/")
        page.click("button:has-text('Next')")  # welcome step
        secret = page.locator("a[href^='otpauth://']").inner_text().strip()
        page.screenshot(path=str(artifacts / "totp-enrollment.png"), full_page=True)
        page.fill("#id_generator-token", code_for(secret))
        page.click("button:has-text('Next')")
        page.wait_for_url(f"{base}/account/two_factor/setup/complete/")

        # sign out, then in again: password, then a wrong code, then the right one
        page.context.clear_cookies()
        sign_in_with_password(page, base)
        page.fill("#id_token-otp_token", "000000")
        page.click("#sign-in")
        assert page.locator(".errorlist").count() >= 1
        assert page.locator("#id_token-otp_token").count() == 1  # still asking for a code
        time.sleep(2)  # the device throttles for a second after a wrong code
        page.fill("#id_token-otp_token", code_for(secret))
        page.click("#sign-in")
        page.wait_for_url(f"{base}/")

        page.goto(f"{base}/admin/")
        assert "Workspace administration" in page.content()
        page.screenshot(path=str(artifacts / "tenant-admin.png"), full_page=True)
    finally:
        forget_devices(tenant_a)
