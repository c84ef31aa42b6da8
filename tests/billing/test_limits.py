"""Plan limits: enforced in services, a form error on pages, problem+json in the API."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.members.models import Invitation
from tenant_apps.projects.models import Attachment, Project
from tests.billing.fake_stripe import FakeStripe


def free_plan(**limits: int | None) -> Plan:
    """Shrink the free plan for this test (rolled back with it)."""
    Plan.objects.filter(code="free").update(**limits)
    return Plan.objects.get(code="free")


def projects_in(tenant: Tenant) -> int:
    with tenant_context(tenant):
        return Project.objects.count()


def test_project_limit_is_a_form_error_on_the_page(owner_a: Client, tenant_a: Tenant) -> None:
    free_plan(max_projects=1)
    with tenant_context(tenant_a):
        Project.objects.create(name="Only one")

    response = owner_a.post("/projects/new/", {"name": "Second", "description": ""})

    assert response.status_code == 400
    errors = response.context["form"].non_field_errors()
    assert errors == [
        "The Free plan allows 1 projects; this workspace uses 1. "
        "An owner can upgrade on the Billing page."
    ]
    assert projects_in(tenant_a) == 1


def test_project_limit_is_problem_json_in_the_api_and_only_for_that_tenant(
    owner_a: Client, owner_b: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    free_plan(max_projects=1)
    created = owner_a.post("/api/v1/projects", {"name": "First"}, content_type="application/json")
    assert created.status_code == 201
    assert created.json()["name"] == "First"

    refused = owner_a.post("/api/v1/projects", {"name": "Second"}, content_type="application/json")

    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    body = refused.json()
    assert (body["code"], body["title"]) == ("plan_limit_reached", "Plan limit reached")
    assert projects_in(tenant_a) == 1
    # tenant B's own count decides for B: A's projects do not count there
    other = owner_b.post("/api/v1/projects", {"name": "B's first"}, content_type="application/json")
    assert other.status_code == 201
    assert projects_in(tenant_b) == 1
    assert projects_in(tenant_a) == 1


def test_projects_api_needs_a_signed_in_member(client_a: Client, tenant_a: Tenant) -> None:
    response = client_a.post("/api/v1/projects", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert projects_in(tenant_a) == 0


def test_seat_limit_counts_members_and_open_invitations(owner_a: Client, tenant_a: Tenant) -> None:
    free_plan(max_seats=2)  # the owner plus one
    first = owner_a.post("/members/invite/", {"email": "one@alpha.test", "role": "member"})
    assert first.status_code == 302

    second = owner_a.post("/members/invite/", {"email": "two@alpha.test", "role": "member"})

    assert second.status_code == 400
    [error] = second.context["invite_form"].non_field_errors()
    assert error.startswith("The Free plan allows 2 members (pending invitations included)")
    with tenant_context(tenant_a):
        assert list(Invitation.objects.values_list("email", flat=True)) == ["one@alpha.test"]


def test_storage_limit_refuses_the_upload(owner_a: Client, tenant_a: Tenant) -> None:
    free_plan(max_storage_bytes=1024 * 1024)
    with tenant_context(tenant_a):
        project = Project.objects.create(name="Files")
    upload = SimpleUploadedFile("big.bin", b"x" * (1024 * 1024 + 1))

    response = owner_a.post(f"/projects/{project.pk}/attachments/", {"file": upload})

    assert response.status_code == 400
    [error] = response.context["attachment_form"].errors["file"]
    assert error.startswith("The Free plan allows 1 MB of file storage")
    with tenant_context(tenant_a):
        assert not Attachment.objects.exists()


@pytest.mark.usefixtures("stripe_fake")
def test_paid_plan_lifts_the_limit_only_with_billing_on(
    owner_a: Client, pro_plan: Plan, tenant_a: Tenant, settings: object
) -> None:
    free_plan(max_projects=0)
    BillingAccount.objects.create(tenant=tenant_a, plan=pro_plan, subscription_status="active")
    ok = owner_a.post("/api/v1/projects", {"name": "Pro"}, content_type="application/json")
    assert ok.status_code == 201

    settings.STRIPE_SECRET_KEY = ""  # type: ignore[attr-defined]  # keys removed: free for all
    refused = owner_a.post("/api/v1/projects", {"name": "x"}, content_type="application/json")
    assert refused.json()["code"] == "plan_limit_reached"


def test_money_is_integer_minor_units(stripe_off: FakeStripe) -> None:
    assert Plan(price_minor=2900, currency="usd").price_display == "29.00 USD / month"
    assert Plan(price_minor=123456, currency="eur").price_display == "1,234.56 EUR / month"
    assert Plan(price_minor=3000, currency="jpy").price_display == "3,000 JPY / month"
    assert Plan(price_minor=0).price_display == "Free"
