"""Project pages keep the same number of queries however many rows they show."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.projects.models import Export
from tests.factories import (
    AttachmentFactory,
    ExportFactory,
    ProjectFactory,
    TaskFactory,
    UserFactory,
)


@pytest.mark.parametrize("rows", [1, 10])
def test_project_list_queries_do_not_grow(
    owner_a: Client, tenant_a: Tenant, rows: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    with tenant_context(tenant_a):
        for project in ProjectFactory.create_batch(rows):
            TaskFactory.create(project=project)
    owner_a.get("/projects/")  # warm: the dashboard figures come from the cache after this
    # search path, session, user, projects with their open task counts
    with django_assert_num_queries(4):
        response = owner_a.get("/projects/")
    assert response.status_code == 200
    assert len(response.context["projects"]) == rows


@pytest.mark.parametrize("rows", [1, 10])
def test_project_detail_queries_do_not_grow(
    owner_a: Client, tenant_a: Tenant, rows: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    # given: a project with `rows` tasks (each assigned to someone else), files and exports
    with tenant_context(tenant_a):
        project = ProjectFactory.create()
        for assignee in UserFactory.create_batch(rows):
            TaskFactory.create(project=project, assignee=assignee)
        AttachmentFactory.create_batch(rows, project=project)
        ExportFactory.create_batch(
            rows, project=project, status=Export.Status.DONE, file="exports/tasks.csv"
        )
    owner_a.get(f"/projects/{project.pk}/")  # warm: the host's route is cached after this

    # search path, session, user, project, members for the task form, tasks with their
    # assignees, attachments, the latest exports
    with django_assert_num_queries(8):
        response = owner_a.get(f"/projects/{project.pk}/")

    assert response.status_code == 200
    assert len(response.context["tasks"]) == rows
    assert len(response.context["attachments"]) == rows
    assert len(response.context["exports"]) == min(rows, 5)
