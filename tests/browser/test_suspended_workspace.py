"""A workspace suspended for non-payment, as its owner and as a member see it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared_apps.accounts.models import User
from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.services import tenant_resume, tenant_suspend
from tests.browser.test_billing_flow import (  # noqa: F401  # fixtures, used by name
    billing_on,
    in_own_connection,
    pro_plan_committed,
)
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.browser

MEMBER_EMAIL = "kim@alpha.test"


@pytest.fixture
def suspended_for_non_payment(tenant_a: Tenant, request: pytest.FixtureRequest) -> Iterator[None]:
    """Tenant A on Pro, past due and suspended by billing, with a member; all undone after."""
    request.getfixturevalue("billing_on")
    request.getfixturevalue("pro_plan_committed")

    def suspend() -> None:
        BillingAccount.objects.update_or_create(
            tenant_id=tenant_a.id,
            defaults={
                "plan": Plan.objects.get(code="pro"),
                "stripe_customer_id": "cus_suspended",
                "subscription_status": BillingAccount.Status.PAST_DUE,
                "is_suspended_by_billing": True,
            },
        )
        tenant_suspend(
            tenant=tenant_a, reason="payment overdue", actor="billing", for_non_payment=True
        )

    def member() -> None:
        UserFactory.create(email=MEMBER_EMAIL, role=User.Role.MEMBER)

    in_own_connection(suspend)
    in_own_connection(member, tenant_a)
    yield

    def resume() -> None:
        tenant_resume(tenant=tenant_a, actor="billing")

    def forget_member() -> None:
        User.objects.filter(email=MEMBER_EMAIL).delete()

    in_own_connection(resume)
    in_own_connection(forget_member, tenant_a)


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_auth-username", email)
    page.fill("#id_auth-password", TEST_PASSWORD)
    page.click("#sign-in")


def test_the_owner_signs_in_to_a_billing_only_page(
    suspended_for_non_payment: None, live_url: str, page: Any, artifacts: Path
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")

    page.goto(f"{base}/projects/")
    page.wait_for_selector("#billing-only")  # sent to sign in, with the reason shown
    page.screenshot(path=str(artifacts / "suspended-sign-in.png"), full_page=True)
    _sign_in(page, base, "owner@alpha.test")
    page.wait_for_url(f"{base}/billing/")
    page.wait_for_selector("#pay-to-reopen")
    page.screenshot(path=str(artifacts / "suspended-owner-billing.png"), full_page=True)
    assert page.locator("header nav a").count() == 0  # no way into the rest of the workspace
    assert page.locator("button:has-text('Manage billing')").count() == 1

    page.goto(f"{base}/members/")
    assert page.url == f"{base}/billing/"


def test_a_member_sees_the_suspended_page(
    suspended_for_non_payment: None, live_url: str, page: Any, artifacts: Path
) -> None:
    base = live_url.replace("localhost", "alpha.localhost")

    _sign_in(page, base, MEMBER_EMAIL)
    page.wait_for_selector("#suspended-for-non-payment")
    page.screenshot(path=str(artifacts / "suspended-member.png"), full_page=True)
    assert page.locator("h1").inner_text() == "This workspace is suspended"

    page.click("button:has-text('Sign out')")
    page.wait_for_selector("#auth-username, #id_auth-username")
