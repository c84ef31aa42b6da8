"""An owner enrolls an authenticator app through the gate (password again, code by e-mail),
stores the backup codes shown once, signs in again with the app's code and reaches the admin,
then signs in with a backup code as if the phone were lost."""

from __future__ import annotations

import base64
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
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


def mailed_code() -> str:
    """The live server runs in this process and delivers mail inline: read its outbox."""
    for _ in range(50):
        for message in reversed(mail.outbox):
            if message.subject.startswith("Your code to add a sign-in device"):
                found = re.search(r"\b(\d{6})\b", str(message.body))
                assert found
                return found.group(1)
        time.sleep(0.1)
    raise AssertionError("no code was e-mailed")


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
        # the admin first demands a device; adding one starts at the gate
        sign_in_with_password(page, base)
        page.wait_for_url(f"{base}/")
        page.screenshot(path=str(artifacts / "workspace-home-security-link.png"), full_page=True)
        page.goto(f"{base}/admin/")
        page.wait_for_url(f"{base}/account/two_factor/setup/confirm/")
        page.screenshot(path=str(artifacts / "device-gate-password.png"), full_page=True)
        page.fill("#id_password", "not-my-password")
        page.click("#confirm-submit")
        assert "That is not your password." in page.content()
        assert mail.outbox == []  # a wrong password sends nothing
        page.fill("#id_password", TEST_PASSWORD)
        page.click("#confirm-submit")
        page.wait_for_selector("#id_code")
        page.screenshot(path=str(artifacts / "device-gate-code.png"), full_page=True)
        page.fill("#id_code", mailed_code())
        page.click("#confirm-submit")
        page.wait_for_url(f"{base}/account/two_factor/setup/")
        page.click("button:has-text('Next')")  # welcome step
        secret = page.locator("a[href^='otpauth://']").inner_text().strip()
        qr = page.locator("#device-setup img")
        qr.evaluate("img => img.decode()")  # the QR code has loaded before the screenshot
        assert qr.evaluate("img => img.naturalWidth") > 0
        page.screenshot(path=str(artifacts / "totp-enrollment.png"), full_page=True)
        page.fill("#id_generator-token", code_for(secret))
        page.click("button:has-text('Next')")
        page.wait_for_url(f"{base}/account/two_factor/setup/complete/")
        codes = [code.strip() for code in page.locator("#backup-codes code").all_inner_texts()]
        assert len(codes) == 10
        page.screenshot(path=str(artifacts / "backup-codes-shown-once.png"), full_page=True)
        page.click("#setup-continue")  # "I have stored my codes"
        page.goto(f"{base}/account/two_factor/setup/complete/")
        assert page.locator("#backup-codes").count() == 0  # never shown again

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
        page.goto(f"{base}/security/")
        page.screenshot(path=str(artifacts / "workspace-security.png"), full_page=True)

        # the phone is lost: a backup code signs in instead, once
        page.context.clear_cookies()
        sign_in_with_password(page, base)
        page.click("button:has-text('Use a backup code')")
        page.wait_for_selector("#id_backup-otp_token")
        page.screenshot(path=str(artifacts / "sign-in-backup-code.png"), full_page=True)
        page.fill("#id_backup-otp_token", codes[0])
        page.click("#sign-in")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/admin/")
        assert "Workspace administration" in page.content()
        page.goto(f"{base}/account/two_factor/backup/tokens/")
        assert page.locator("#codes-remaining").inner_text() == "9"
    finally:
        forget_devices(tenant_a)
