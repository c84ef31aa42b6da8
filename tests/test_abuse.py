"""Abuse that is not an attack on one input: floods, shortcuts and stored sessions."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.projects.models import Attachment, Export
from tests.factories import TEST_PASSWORD, AttachmentFactory, ExportFactory, ProjectFactory
from tests.test_admin import verified_client


def _sessions(tenant: Tenant | None) -> int:
    if tenant is None:
        with public_context():
            return Session.objects.count()
    with tenant_context(tenant):
        return Session.objects.count()


@pytest.mark.parametrize(
    ("host", "paths"),
    [
        ("localhost", ["/", "/signup/", "/login/", "/password/reset/", "/errors/"]),
        ("alpha.localhost", ["/", "/login/", "/password/reset/", "/robots.txt"]),
    ],
)
def test_anonymous_page_views_store_no_session(
    tenant_a: Tenant, host: str, paths: list[str]
) -> None:
    tenant = None if host == "localhost" else tenant_a
    before = _sessions(tenant)
    client = Client(HTTP_HOST=host)
    for path in paths:
        assert client.get(path).status_code in (200, 302)
    assert _sessions(tenant) == before
    assert "sessionid" not in client.cookies


def test_signing_in_after_an_anonymous_visit_still_works(tenant_a: Tenant) -> None:
    client = Client(HTTP_HOST="alpha.localhost")
    client.get("/login/")
    response = client.post(
        "/login/",
        {
            "login_view-current_step": "auth",
            "auth-username": "owner@alpha.test",
            "auth-password": TEST_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_sign_in_attempts_are_rate_limited_per_client(tenant_a: Tenant, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "sign_in": {"client": "3/m"}}
    client = Client(HTTP_HOST="alpha.localhost")
    form = {"login_view-current_step": "auth", "auth-username": "x@y.test", "auth-password": "no"}
    answers = [
        client.post("/login/", {**form, "auth-username": f"u{n}@alpha.test"}) for n in range(4)
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert int(answers[-1]["Retry-After"]) > 0
    assert b"Too many attempts" in answers[-1].content


def test_invitations_are_rate_limited_per_person(
    owner_a: Client, tenant_a: Tenant, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "invitation": {"actor": "2/h"}}
    codes = [
        owner_a.post(
            "/members/invite/", {"email": f"n{n}@alpha.test", "role": "member"}
        ).status_code
        for n in range(3)
    ]
    assert codes == [302, 302, 429]


def test_the_signup_page_counts_against_the_same_limit_as_the_api(
    root: Client, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signup": {"client": "2/m"}}
    invalid = {"name": "x", "subdomain": "www", "email": "a@b.test", "password": "x"}
    assert root.post("/api/v1/signup", invalid, content_type="application/json").status_code == 400
    assert root.post("/signup/", invalid).status_code == 200
    page = root.post("/signup/", invalid)
    api = root.post("/api/v1/signup", invalid, content_type="application/json")
    assert (page.status_code, api.status_code) == (429, 429)
    assert api.json()["code"] == "throttled"
    assert int(page["Retry-After"]) > 0


def test_the_admin_view_on_site_shortcut_is_gone(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        admin = verified_client("alpha.localhost", "owner@alpha.test")
        project = ProjectFactory.create()
    assert admin.get(f"/admin/r/1/{project.pk}/").status_code == 404


def test_the_workspace_admin_shows_files_and_exports_without_a_500(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        admin = verified_client("alpha.localhost", "owner@alpha.test")
        attachment = AttachmentFactory.create()
        export = ExportFactory.create(project=attachment.project)
        user = User.objects.get(email="owner@alpha.test")
    for path in (
        f"/admin/projects/attachment/{attachment.pk}/change/",
        f"/admin/projects/export/{export.pk}/change/",
        "/admin/projects/attachment/",
        "/admin/projects/export/",
        f"/admin/accounts/user/{user.pk}/change/",
    ):
        assert admin.get(path).status_code == 200, path
    assert admin.get("/admin/projects/attachment/add/").status_code == 403
    with tenant_context(tenant_a):
        assert (Attachment.objects.count(), Export.objects.count()) == (1, 1)


def test_expired_sessions_are_cleared_in_every_schema_on_a_schedule(
    tenant_a: Tenant, tenant_b: Tenant, settings: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from shared_apps.accounts.tasks import sessions_clear_public_task, sessions_clear_task

    def sessions(expired: bool) -> None:
        moment = timezone.now() + (timedelta(days=-1) if expired else timedelta(days=1))
        Session.objects.create(
            session_key=f"{'old' if expired else 'new'}{timezone.now().timestamp()}",
            session_data="",
            expire_date=moment,
        )

    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            sessions(expired=True)
            sessions(expired=False)
    with public_context():
        sessions(expired=True)

    with tenant_context(tenant_a):
        sessions_clear_task()
    with public_context():
        sessions_clear_public_task()

    def left(tenant: Tenant | None) -> int:
        context = tenant_context(tenant) if tenant else public_context()
        with context:
            return Session.objects.filter(expire_date__lt=timezone.now()).count()

    assert (left(tenant_a), left(tenant_b), left(None)) == (0, 1, 0)  # B waits for its turn
    with tenant_context(tenant_a):
        assert Session.objects.count() == 1  # the live one stays
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["clear-expired-sessions"]["kwargs"] == {"task_name": "accounts.sessions_clear"}
    assert schedule["clear-expired-sessions-public"]["task"] == "accounts.sessions_clear_public"
