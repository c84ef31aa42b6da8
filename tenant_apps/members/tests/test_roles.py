"""Each role's allowed and denied actions, decided by the one policy module."""

from __future__ import annotations

import pytest
from django.test import Client

from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.projects.models import Project
from tests.factories import member_create


def client_for(tenant: Tenant, role: str) -> tuple[Client, Project]:
    with tenant_context(tenant):
        user = member_create(f"{role}.person@alpha.test", role)
        project = Project.objects.create(name="Roadmap")
        client = Client(HTTP_HOST="alpha.localhost")
        client.force_login(user)
    return client, project


# (action, method, path template, data) → expected status per role
CASES = [
    ("view projects", "get", "/projects/", {}, {"member": 200, "admin": 200, "owner": 200}),
    ("view a project", "get", "/projects/{p}/", {}, {"member": 200, "admin": 200, "owner": 200}),
    ("add a task", "post", "/projects/{p}/tasks/", {"title": "t", "status": "todo"},
     {"member": 302, "admin": 302, "owner": 302}),
    ("export", "post", "/projects/{p}/exports/", {}, {"member": 302, "admin": 302, "owner": 302}),
    ("create a project", "post", "/projects/new/", {"name": "New"},
     {"member": 403, "admin": 302, "owner": 302}),
    ("edit a project", "post", "/projects/{p}/edit/", {"name": "Renamed", "description": ""},
     {"member": 403, "admin": 302, "owner": 302}),
    ("invite", "post", "/members/invite/", {"email": "new@alpha.test", "role": "member"},
     {"member": 403, "admin": 302, "owner": 302}),
]  # fmt: skip


@pytest.mark.parametrize("role", ["member", "admin", "owner"])
@pytest.mark.parametrize(
    ("action", "method", "path", "data", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_role_matrix_on_projects_and_members(
    tenant_a: Tenant, role: str, action: str, method: str, path: str, data: dict[str, str],
    expected: dict[str, int], django_capture_on_commit_callbacks: object,
) -> None:  # fmt: skip
    client, project = client_for(tenant_a, role)
    response = getattr(client, method)(path.format(p=project.pk), data)
    assert response.status_code == expected[role], f"{role} {action}"
    if expected[role] == 403:
        with tenant_context(tenant_a):
            project.refresh_from_db()
            assert project.name == "Roadmap"  # a refused action changed nothing
            assert not Project.objects.filter(name="New").exists()
