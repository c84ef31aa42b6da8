"""Plan limits: enforced in services, a form error on pages, problem+json in the API."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone

from core.errors import AppError
from shared_apps.accounts.models import User
from shared_apps.billing.models import BillingAccount, Plan
from shared_apps.tenants.addresses import LinkOrigin
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.members.models import Invitation
from tenant_apps.members.services import invitation_send
from tenant_apps.projects.models import Attachment, Project
from tenant_apps.projects.services import project_create
from tests.billing.fake_stripe import FakeStripe
from tests.factories import BillingAccountFactory, PlanFactory, ProjectFactory
from tests.infra import wait_for


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
        ProjectFactory.create(name="Only one")

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
    assert response.status_code == 401
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
        project = ProjectFactory.create(name="Files")
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
    BillingAccountFactory.create(
        tenant=tenant_a, plan=pro_plan, subscription_status=BillingAccount.Status.ACTIVE
    )
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


# -- races: two real connections at the limit ---------------------------------------------


@pytest.fixture
def at_limit(
    committed: tuple[Tenant, Tenant], stripe_fake: FakeStripe
) -> Iterator[tuple[Tenant, User]]:
    """Committed: tenant A on a plan that allows one more project and one more seat."""
    tenant = committed[0]
    with tenant_context(tenant):
        owner = User.objects.get(email="owner@alpha.test")
        projects = Project.objects.count()
        seats = (
            User.objects.filter(is_active=True).count()
            + Invitation.objects.filter(
                accepted_at__isnull=True, expires_at__gt=timezone.now()
            ).count()
        )
    plan = PlanFactory.create(
        code="race",
        name="Race",
        stripe_price_id="price_race",
        price_minor=100,
        max_projects=projects + 1,
        max_seats=seats + 1,
    )
    BillingAccountFactory.create(
        tenant=tenant, plan=plan, subscription_status=BillingAccount.Status.ACTIVE
    )
    try:
        yield tenant, owner
    finally:
        with tenant_context(tenant):
            Invitation.objects.filter(email__endswith="@race.test").delete()
        BillingAccount.objects.filter(tenant=tenant).delete()
        plan.delete()


def advisory_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        return int(cursor.fetchone()[0])


def race(tenant: Tenant, action: Callable[[int], object]) -> list[str]:
    """Run `action(1)` in a transaction kept open until `action(2)`, on another connection,
    has finished or is waiting for a lock; return both outcomes."""
    outcomes: dict[int, str] = {}
    first_done, release, second_done = threading.Event(), threading.Event(), threading.Event()

    def run(n: int) -> None:
        try:
            with tenant_context(tenant), transaction.atomic():
                try:
                    action(n)
                    outcomes[n] = "created"
                except AppError as error:
                    outcomes[n] = error.code
                if n == 1:
                    first_done.set()
                    release.wait(timeout=30)  # still uncommitted while the second one counts
        finally:
            (first_done if n == 1 else second_done).set()
            connections.close_all()

    first = threading.Thread(target=run, args=(1,))
    second = threading.Thread(target=run, args=(2,))
    first.start()
    try:
        assert first_done.wait(timeout=30)
        second.start()
        wait_for(lambda: second_done.is_set() or advisory_waiters() > 0)
    finally:
        release.set()
        first.join(timeout=30)
        if second.ident is not None:
            second.join(timeout=30)
    return [outcomes.get(1, "error"), outcomes.get(2, "error")]


def test_two_concurrent_project_creations_at_the_limit_one_is_refused(
    at_limit: tuple[Tenant, User],
) -> None:
    tenant, owner = at_limit
    with tenant_context(tenant):
        before = Project.objects.count()

    outcomes = race(tenant, lambda n: project_create(actor=owner, name=f"Race {n}"))

    assert outcomes == ["created", "plan_limit_reached"]
    with tenant_context(tenant):
        assert Project.objects.count() == before + 1


def test_two_concurrent_invitations_for_the_last_seat_one_is_refused(
    at_limit: tuple[Tenant, User],
) -> None:
    tenant, owner = at_limit

    outcomes = race(
        tenant,
        lambda n: invitation_send(
            actor=owner,
            email=f"guest{n}@race.test",
            role=User.Role.MEMBER,
            origin=LinkOrigin("http"),
        ),
    )

    assert outcomes == ["created", "plan_limit_reached"]
    with tenant_context(tenant):
        assert Invitation.objects.filter(email__endswith="@race.test").count() == 1
