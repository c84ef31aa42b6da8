"""Project pages: a member's daily flow, and nothing of another tenant ever shows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from core.logging import RequestLogFilter
from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenancy.logging import TenantLogFilter
from tenant_apps.projects import selectors, services
from tenant_apps.projects.models import Project, Task
from tests.factories import ProjectFactory, TaskFactory


def signed_in(client: Client, tenant: Tenant, email: str) -> Client:
    with tenant_context(tenant):
        client.force_login(User.objects.get(email=email))  # a session in this tenant's schema
    return client


@pytest.fixture
def member_a(client_a: Client, tenant_a: Tenant) -> Client:
    return signed_in(client_a, tenant_a, "owner@alpha.test")


@pytest.fixture
def member_b(client_b: Client, tenant_b: Tenant) -> Client:
    return signed_in(client_b, tenant_b, "owner@beta.test")


def owner(tenant: Tenant) -> User:
    return User.objects.get(email=f"owner@{tenant.subdomain}.test")


def test_member_creates_a_project_and_adds_tasks(member_a: Client, tenant_a: Tenant) -> None:
    response = member_a.post("/projects/new/", {"name": "Launch", "description": "Q3 launch"})
    assert response.status_code == 302
    with tenant_context(tenant_a):
        project = Project.objects.get(name="Launch")
    assert response["Location"] == f"/projects/{project.pk}/"

    response = member_a.post(
        f"/projects/{project.pk}/tasks/",
        {
            "title": "Write copy",
            "status": Task.Status.TODO,
            "assignee": "",
            "due_date": "2026-12-01",
        },
    )
    assert response.status_code == 302
    page = member_a.get(f"/projects/{project.pk}/")
    assert page.status_code == 200
    assert b"Write copy" in page.content
    listing = member_a.get("/projects/")
    assert b"Launch" in listing.content


def test_task_form_errors_show_beside_fields(member_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Errors")
    response = member_a.post(
        f"/projects/{project.pk}/tasks/",
        {"title": "", "status": Task.Status.TODO, "due_date": "soon"},
    )
    assert response.status_code == 400
    errors = response.context["task_form"].errors
    assert set(errors) == {"title", "due_date"}


def test_anonymous_visitor_is_sent_to_sign_in(client_a: Client) -> None:
    response = client_a.get("/projects/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_project_of_a_is_404_on_b_and_nothing_of_a_leaks(
    member_a: Client, member_b: Client, tenant_a: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    with tenant_context(tenant_a):
        secret = ProjectFactory.create(name="Alpha Secret Merger")
        TaskFactory.create(project=secret, title="Alpha Secret Task")
    assert member_a.get(f"/projects/{secret.pk}/").status_code == 200

    caplog.handler.addFilter(TenantLogFilter())
    caplog.handler.addFilter(RequestLogFilter())
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    for path in (
        f"/projects/{secret.pk}/",
        f"/projects/{secret.pk}/edit/",
        f"/projects/{secret.pk}/exports/",
        f"/projects/{secret.pk}/attachments/1/",
    ):
        response = member_b.get(path) if not path.endswith("exports/") else member_b.post(path)
        assert response.status_code == 404, path
        assert b"Alpha Secret" not in response.content
    assert b"Alpha Secret" not in member_b.get("/projects/").content

    assert caplog.records, "B's requests were logged"
    for record in caplog.records:
        assert getattr(record, "tenant", None) == "beta"
        assert "Alpha Secret" not in record.getMessage()


def test_dashboard_is_cached_and_refreshed_on_writes(
    tenant_a: Tenant,
    tenant_b: Tenant,
    django_capture_on_commit_callbacks: Any,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    with tenant_context(tenant_a):
        actor = owner(tenant_a)
        with django_capture_on_commit_callbacks(execute=True):
            project = services.project_create(actor=actor, name="Dash")
            services.task_create(actor=actor, project=project, title="one")
        assert selectors.dashboard_open_tasks() == {"Dash": 1}
        with django_assert_num_queries(0):
            assert selectors.dashboard_open_tasks() == {"Dash": 1}  # cached
        with django_capture_on_commit_callbacks(execute=True):
            services.task_create(actor=actor, project=project, title="two")
        assert selectors.dashboard_open_tasks() == {"Dash": 2}  # invalidated, not by TTL
    with tenant_context(tenant_b):
        assert selectors.dashboard_open_tasks() == {}
