"""Each role's allowed and denied actions, decided by the one policy module."""

from __future__ import annotations

import pytest
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.projects.models import Project, Task
from tests.factories import ProjectFactory, UserFactory

MEMBER, ADMIN, OWNER = User.Role.MEMBER, User.Role.ADMIN, User.Role.OWNER


def client_for(tenant: Tenant, role: User.Role) -> tuple[Client, Project]:
    with tenant_context(tenant):
        user = UserFactory.create(email=f"{role}.person@alpha.test", role=role)
        project = ProjectFactory.create(name="Roadmap")
        client = Client(HTTP_HOST="alpha.localhost")
        client.force_login(user)
    return client, project


EVERYONE = {MEMBER: 302, ADMIN: 302, OWNER: 302}
MANAGERS = {MEMBER: 403, ADMIN: 302, OWNER: 302}
READERS = {MEMBER: 200, ADMIN: 200, OWNER: 200}

# (action, method, path template, data) → expected status per role
CASES = [
    ("view projects", "get", "/projects/", {}, READERS),
    ("view a project", "get", "/projects/{p}/", {}, READERS),
    (
        "add a task",
        "post",
        "/projects/{p}/tasks/",
        {"title": "t", "status": Task.Status.TODO},
        EVERYONE,
    ),
    ("export", "post", "/projects/{p}/exports/", {}, EVERYONE),
    ("create a project", "post", "/projects/new/", {"name": "New"}, MANAGERS),
    (
        "edit a project",
        "post",
        "/projects/{p}/edit/",
        {"name": "Renamed", "description": ""},
        MANAGERS,
    ),
    ("invite", "post", "/members/invite/", {"email": "new@alpha.test", "role": MEMBER}, MANAGERS),
]


@pytest.mark.parametrize("role", list(User.Role))
@pytest.mark.parametrize(
    ("action", "method", "path", "data", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_role_matrix_on_projects_and_members(
    tenant_a: Tenant,
    role: User.Role,
    action: str,
    method: str,
    path: str,
    data: dict[str, str],
    expected: dict[str, int],
    django_capture_on_commit_callbacks: object,
) -> None:
    client, project = client_for(tenant_a, role)
    response = getattr(client, method)(path.format(p=project.pk), data)
    assert response.status_code == expected[role], f"{role} {action}"
    if expected[role] == 403:
        with tenant_context(tenant_a):
            project.refresh_from_db()
            assert project.name == "Roadmap"  # a refused action changed nothing
            assert not Project.objects.filter(name="New").exists()
