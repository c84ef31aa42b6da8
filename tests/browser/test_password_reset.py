"""A person who forgot their password resets it from the sign-in page and signs in again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.cache import caches
from django_redis import get_redis_connection  # type: ignore[import-untyped]

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tests.factories import UserFactory
from tests.fixtures import in_own_connection

pytestmark = pytest.mark.browser

EMAIL = "forgetful@alpha.test"
NEW_PASSWORD = "purple-lantern-orbit-42"


def forget_reset_limits() -> None:
    redis = get_redis_connection("default")
    for key in redis.scan_iter(match=f"{caches['default'].key_prefix}:*:rl:*"):
        redis.delete(key)


@pytest.fixture
def person_committed(db: None, tenant_a: Tenant) -> Iterator[None]:
    """A member the live server can see; they, their sessions and sign-ins go after."""
    forget_reset_limits()
    in_own_connection(lambda: UserFactory.create(email=EMAIL), tenant_a)
    yield

    def forget() -> None:
        from axes.models import AccessAttempt, AccessLog
        from django.contrib.sessions.models import Session

        user = User.objects.get(email=EMAIL)
        for session in Session.objects.all():
            if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
                session.delete()
        AccessLog.objects.filter(username=EMAIL).delete()
        AccessAttempt.objects.filter(username=EMAIL).delete()
        user.delete()

    in_own_connection(forget, tenant_a)
    forget_reset_limits()


def test_a_member_resets_a_forgotten_password_and_signs_in_with_it(
    tenant_a: Tenant, live_url: str, page: Any, artifacts: Path, person_committed: None
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")

    page.goto(f"{base}/login/")
    page.screenshot(path=str(artifacts / "reset-sign-in-link.png"), full_page=True)
    page.click("#forgot-password")
    page.wait_for_url(f"{base}/password/reset/")
    assert page.locator("h1").inner_text() == "Reset your password"
    page.screenshot(path=str(artifacts / "reset-request.png"), full_page=True)
    page.fill("#id_email", EMAIL.upper())
    page.click("#send-reset-link")
    assert "If an account exists for that address" in page.locator("#reset-sent").inner_text()
    page.screenshot(path=str(artifacts / "reset-sent.png"), full_page=True)

    [message] = mail.outbox
    assert message.to == [EMAIL]
    found = re.search(r"http://\S+/password/reset/\S+/", str(message.body))
    assert found is not None
    link = found.group(0)
    assert link.startswith(f"{base}/password/reset/")
    html = message.alternatives[0][0]  # type: ignore[union-attr]

    page.goto(link)
    page.wait_for_url(re.compile(r"/password/reset/[^/]+/set-password/$"))  # token out of the URL
    assert page.locator("h1").inner_text() == "Choose a new password"
    page.screenshot(path=str(artifacts / "reset-choose.png"), full_page=True)
    page.fill("#id_new_password", "password")
    page.click("#set-password")
    assert "too common" in page.locator("#new_password-errors").inner_text()
    page.screenshot(path=str(artifacts / "reset-weak.png"), full_page=True)
    page.fill("#id_new_password", NEW_PASSWORD)
    page.click("#set-password")
    page.wait_for_url(f"{base}/password/reset/done/")
    page.screenshot(path=str(artifacts / "reset-done.png"), full_page=True)
    assert [m.subject for m in mail.outbox][-1] == "Your password for Alpha Inc was changed"

    page.click("#go-sign-in")
    page.wait_for_url(f"{base}/login/")
    page.fill("#id_auth-username", EMAIL)
    page.fill("#id_auth-password", NEW_PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/")
    page.screenshot(path=str(artifacts / "reset-signed-in.png"), full_page=True)

    page.goto(link)  # spent
    assert page.locator("#reset-link-invalid").count() == 1
    page.screenshot(path=str(artifacts / "reset-link-spent.png"), full_page=True)
    page.goto("about:blank")  # away from the site's CSP, which refuses the mail's inline styles
    page.set_content(html)
    page.screenshot(path=str(artifacts / "reset-mail.png"), full_page=True)
