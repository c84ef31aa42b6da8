"""Pages that know the role: controls a role cannot use are not shown, a refusal is a page in
the workspace's layout, destructive actions ask first."""

from __future__ import annotations

import pytest

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.projects.models import Project, Task
from tests.factories import ProjectFactory, UserFactory
from tests.fixtures import TENANT_A, browser_for


@pytest.fixture
def project(tenant_a: Tenant) -> Project:
    with tenant_context(tenant_a):
        return ProjectFactory.create(name="Roadmap")


def test_a_member_sees_no_project_controls_and_a_refusal_page_in_the_workspace(
    tenant_a: Tenant, project: Project
) -> None:
    with tenant_context(tenant_a):
        member = UserFactory.create(role=User.Role.MEMBER)
    client = browser_for(tenant_a, member)

    listing = client.get("/projects/")
    detail = client.get(f"/projects/{project.pk}/")
    assert b"New project" not in listing.content
    assert b"Edit project" not in detail.content

    for path in ("/projects/new/", f"/projects/{project.pk}/edit/"):
        refused = client.get(path)
        assert refused.status_code == 403
        assert b"You can't do that here" in refused.content
        assert b'href="/projects/"' in refused.content  # the workspace's own navigation
    refused_post = client.post("/projects/new/", {"name": "Sneaky", "description": ""})
    assert refused_post.status_code == 403
    with tenant_context(tenant_a):
        assert list(Project.objects.values_list("name", flat=True)) == ["Roadmap"]


def test_an_admin_sees_no_controls_on_an_owners_row(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        admin = UserFactory.create(role=User.Role.ADMIN)
        member = UserFactory.create(role=User.Role.MEMBER)
        owner = User.objects.get(email=TENANT_A.owner_email)
    page = browser_for(tenant_a, admin).get("/members/")

    assert f'action="/members/{owner.pk}/role/"'.encode() not in page.content
    assert f'href="/members/{owner.pk}/remove/"'.encode() not in page.content
    assert f'href="/members/{member.pk}/remove/"'.encode() in page.content
    # Resetting someone's second factor is for owners only.
    assert b"Reset two-factor" not in page.content


def test_removing_someone_asks_first_then_removes(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        member = UserFactory.create(email="leaving@alpha.test", role=User.Role.MEMBER)
        owner = User.objects.get(email=TENANT_A.owner_email)
    client = browser_for(tenant_a, owner)

    confirm = client.get(f"/members/{member.pk}/remove/")
    assert confirm.status_code == 200
    assert b"Remove leaving@alpha.test from this workspace?" in confirm.content
    with tenant_context(tenant_a):
        assert User.objects.get(pk=member.pk).is_active

    done = client.post(f"/members/{member.pk}/remove/")
    assert (done.status_code, done["Location"]) == (302, "/members/")
    with tenant_context(tenant_a):
        assert not User.objects.get(pk=member.pk).is_active


def test_a_new_task_keeps_the_status_chosen(tenant_a: Tenant, project: Project) -> None:
    with tenant_context(tenant_a):
        owner = User.objects.get(email=TENANT_A.owner_email)
    client = browser_for(tenant_a, owner)

    response = client.post(
        f"/projects/{project.pk}/tasks/",
        {"title": "Already going", "status": Task.Status.DOING, "assignee": "", "due_date": ""},
    )

    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert Task.objects.get(title="Already going").status == Task.Status.DOING
