"""The projects API: lists by cursor, strict inputs, the pages' policy, one tenant's rows only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.projects.models import Project, Task
from tests.factories import ProjectFactory, TaskFactory, UserFactory
from tests.fixtures import TENANT_B, browser_for

PROBLEM = "application/problem+json"


def patch(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.patch(path, json.dumps(body), content_type="application/json")


def post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, body, content_type="application/json")


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert (response.status_code, response["Content-Type"]) == (status, PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


@pytest.fixture
def owner_b(client_b: Client, tenant_b: Tenant) -> Client:
    with tenant_context(tenant_b):
        client_b.force_login(User.objects.get(email=TENANT_B.owner_email))
    return client_b


@pytest.fixture
def member_a(tenant_a: Tenant) -> Client:
    with tenant_context(tenant_a):
        member = UserFactory.create(role=User.Role.MEMBER)
    return browser_for(tenant_a, member)


# PROJECTS -------------------------------------------------------------------------------


def test_project_list_pages_by_cursor(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        ids = [project.pk for project in ProjectFactory.create_batch(5)]

    first = owner_a.get("/api/v1/projects?page_size=2")
    assert first.status_code == 200
    assert [row["id"] for row in first.json()["results"]] == ids[:2]
    assert first.json()["previous"] is None
    second = owner_a.get(first.json()["next"])
    third = owner_a.get(second.json()["next"])

    assert [row["id"] for row in second.json()["results"]] == ids[2:4]
    assert [row["id"] for row in third.json()["results"]] == ids[4:]
    assert third.json()["next"] is None


def test_project_list_page_size_is_25_unless_asked_and_at_most_100(
    owner_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        ProjectFactory.create_batch(101)

    assert len(owner_a.get("/api/v1/projects").json()["results"]) == 25
    assert len(owner_a.get("/api/v1/projects?page_size=1000").json()["results"]) == 100
    assert len(owner_a.get("/api/v1/projects?page_size=nonsense").json()["results"]) == 25


def test_an_invalid_cursor_is_a_problem(owner_a: Client) -> None:
    assert_problem(owner_a.get("/api/v1/projects?cursor=nonsense"), 404, "not_found")


def test_project_list_filters_by_status_and_searches_names(
    owner_a: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        apollo = ProjectFactory.create(name="Apollo launch")
        gemini = ProjectFactory.create(name="Gemini", status=Project.Status.ARCHIVED)
        ProjectFactory.create(name="Mercury")

    archived = owner_a.get("/api/v1/projects?status=archived").json()["results"]
    searched = owner_a.get("/api/v1/projects?search=LAUNCH").json()["results"]

    assert [row["id"] for row in archived] == [gemini.pk]
    assert [row["id"] for row in searched] == [apollo.pk]
    assert searched[0] == {
        "id": apollo.pk,
        "name": "Apollo launch",
        "description": "",
        "status": "active",
        "created_at": searched[0]["created_at"],
        "updated_at": searched[0]["updated_at"],
    }


def test_an_unknown_status_filter_is_a_validation_problem(owner_a: Client) -> None:
    body = assert_problem(owner_a.get("/api/v1/projects?status=lost"), 400, "validation_failed")
    assert [(error["field"], error["code"]) for error in body["errors"]] == [
        ("status", "invalid_choice")
    ]


def test_project_detail(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Apollo", description="To the moon")

    response = owner_a.get(f"/api/v1/projects/{project.pk}")

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("Apollo", "To the moon")


@pytest.mark.parametrize("project_id", ["999999", "99999999999999999999"])
def test_a_missing_project_is_a_404_problem(owner_a: Client, project_id: str) -> None:
    assert_problem(owner_a.get(f"/api/v1/projects/{project_id}"), 404, "project_not_found")


def test_create_project_answers_201_with_the_project(owner_a: Client, tenant_a: Tenant) -> None:
    response = post(owner_a, "/api/v1/projects", {"name": " Apollo ", "description": "Moon"})

    assert response.status_code == 201
    assert (response.json()["name"], response.json()["status"]) == ("Apollo", "active")
    with tenant_context(tenant_a):
        assert Project.objects.get(pk=response.json()["id"]).name == "Apollo"


def test_unknown_fields_are_a_validation_problem_and_change_nothing(
    owner_a: Client, tenant_a: Tenant
) -> None:
    response = post(owner_a, "/api/v1/projects", {"name": "Apollo", "status": "archived"})

    body = assert_problem(response, 400, "validation_failed")
    assert [(error["field"], error["code"]) for error in body["errors"]] == [
        ("status", "unknown_field")
    ]
    with tenant_context(tenant_a):
        assert not Project.objects.exists()


def test_a_member_cannot_create_or_update_a_project(member_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Apollo")

    assert_problem(post(member_a, "/api/v1/projects", {"name": "Mine"}), 403, "permission_denied")
    refused = patch(member_a, f"/api/v1/projects/{project.pk}", {"name": "Mine"})

    assert_problem(refused, 403, "permission_denied")
    with tenant_context(tenant_a):
        assert list(Project.objects.values_list("name", flat=True)) == ["Apollo"]


def test_patch_project_changes_only_the_fields_given(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Apollo", description="Moon")

    response = patch(owner_a, f"/api/v1/projects/{project.pk}", {"description": "Mars"})

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("Apollo", "Mars")
    with tenant_context(tenant_a):
        project.refresh_from_db()
    assert (project.name, project.description) == ("Apollo", "Mars")


def test_patch_project_with_a_blank_name_is_a_problem(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create(name="Apollo")

    response = patch(owner_a, f"/api/v1/projects/{project.pk}", {"name": "   "})

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    with tenant_context(tenant_a):
        project.refresh_from_db()
    assert project.name == "Apollo"


def test_the_api_takes_json_only(owner_a: Client) -> None:
    response = owner_a.post("/api/v1/projects", {"name": "Form"})  # multipart
    assert_problem(response, 415, "unsupported_media_type")


def test_a_method_no_operation_serves_is_a_405_problem(owner_a: Client) -> None:
    response = owner_a.delete("/api/v1/projects")
    assert_problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"


def test_signed_out_callers_are_told_how_to_authenticate(client_a: Client) -> None:
    response = client_a.get("/api/v1/projects")
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_member_without_the_role_gets_403_not_401(member_a: Client) -> None:
    response = post(member_a, "/api/v1/projects", {"name": "Mine"})
    assert_problem(response, 403, "permission_denied")
    assert "WWW-Authenticate" not in response


# TASKS ----------------------------------------------------------------------------------


def test_task_list_filters_by_status_and_assignee(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create()
        person = UserFactory.create()
        doing = TaskFactory.create(project=project, status=Task.Status.DOING)
        mine = TaskFactory.create(project=project, assignee=person)
        TaskFactory.create(project=project)
        TaskFactory.create(assignee=person)  # another project's
    path = f"/api/v1/projects/{project.pk}/tasks"

    everything = owner_a.get(path).json()["results"]
    by_status = owner_a.get(f"{path}?status=doing").json()["results"]
    by_assignee = owner_a.get(f"{path}?assignee={person.pk}").json()["results"]

    assert len(everything) == 3
    assert [row["id"] for row in by_status] == [doing.pk]
    assert by_assignee == [
        {
            "id": mine.pk,
            "project": project.pk,
            "title": mine.title,
            "status": "todo",
            "assignee": person.pk,
            "due_date": None,
            "created_at": by_assignee[0]["created_at"],
            "updated_at": by_assignee[0]["updated_at"],
        }
    ]


def test_a_member_creates_a_task_in_the_status_chosen(member_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create()
        person = UserFactory.create()

    response = post(
        member_a,
        f"/api/v1/projects/{project.pk}/tasks",
        {"title": "Launch", "status": "doing", "assignee": person.pk, "due_date": "2030-01-31"},
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["assignee"], body["due_date"]) == (
        "doing",
        person.pk,
        "2030-01-31",
    )
    with tenant_context(tenant_a):
        task = Task.objects.get(pk=body["id"])
    assert (task.project_id, task.title, task.status) == (project.pk, "Launch", Task.Status.DOING)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"title": "x", "status": "lost"}, "status", "invalid_choice"),
        ({"title": "x", "priority": 1}, "priority", "unknown_field"),
        ({"status": "todo"}, "title", "required"),
        ({"title": "x", "due_date": "tomorrow"}, "due_date", "invalid"),
    ],
)
def test_task_input_is_checked(
    owner_a: Client, tenant_a: Tenant, body: dict[str, Any], field: str, code: str
) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create()

    response = post(owner_a, f"/api/v1/projects/{project.pk}/tasks", body)

    problem = assert_problem(response, 400, "validation_failed")
    assert [(error["field"], error["code"]) for error in problem["errors"]] == [(field, code)]
    with tenant_context(tenant_a):
        assert not Task.objects.exists()


def test_an_unknown_assignee_is_a_problem(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create()

    response = post(
        owner_a, f"/api/v1/projects/{project.pk}/tasks", {"title": "x", "assignee": 9999}
    )

    assert_problem(response, 400, "assignee_invalid")


def test_no_task_is_added_to_an_archived_project(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create(status=Project.Status.ARCHIVED)

    response = post(owner_a, f"/api/v1/projects/{project.pk}/tasks", {"title": "x"})

    assert_problem(response, 409, "project_archived")
    with tenant_context(tenant_a):
        assert not Task.objects.exists()


def test_patch_task_changes_only_the_fields_given(member_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        person = UserFactory.create()
        task = TaskFactory.create(title="Launch", assignee=person)

    response = patch(
        member_a, f"/api/v1/projects/{task.project_id}/tasks/{task.pk}", {"status": "done"}
    )

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["assignee"]) == ("Launch", person.pk)
    with tenant_context(tenant_a):
        task.refresh_from_db()
    assert (task.title, task.status, task.assignee_id) == ("Launch", Task.Status.DONE, person.pk)


def test_patch_task_can_unassign(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        task = TaskFactory.create(assignee=UserFactory.create())

    path = f"/api/v1/projects/{task.project_id}/tasks/{task.pk}"
    response = patch(owner_a, path, {"assignee": None})

    assert (response.status_code, response.json()["assignee"]) == (200, None)


def test_a_task_of_another_project_is_a_404_problem(owner_a: Client, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create()
        elsewhere = TaskFactory.create()

    response = patch(owner_a, f"/api/v1/projects/{project.pk}/tasks/{elsewhere.pk}", {"title": "x"})

    assert_problem(response, 404, "task_not_found")


# ISOLATION ------------------------------------------------------------------------------


def test_tenant_b_never_reaches_tenant_a_projects_or_tasks(
    owner_b: Client, tenant_a: Tenant
) -> None:
    with tenant_context(tenant_a):
        task = TaskFactory.create(title="A's secret")
    project_path = f"/api/v1/projects/{task.project_id}"
    task_path = f"{project_path}/tasks/{task.pk}"

    assert owner_b.get("/api/v1/projects").json()["results"] == []
    assert_problem(owner_b.get(project_path), 404, "project_not_found")
    assert_problem(owner_b.get(f"{project_path}/tasks"), 404, "project_not_found")
    assert_problem(patch(owner_b, project_path, {"name": "B's"}), 404, "project_not_found")
    assert_problem(
        post(owner_b, f"{project_path}/tasks", {"title": "B's"}), 404, "project_not_found"
    )
    assert_problem(patch(owner_b, task_path, {"title": "B's"}), 404, "project_not_found")
    with tenant_context(tenant_a):
        task.refresh_from_db()
        assert (task.title, task.project.name) == ("A's secret", task.project.name)
        assert Task.objects.count() == 1


def test_a_session_of_tenant_a_is_nobody_on_tenant_b(owner_a: Client) -> None:
    owner_a.defaults["HTTP_HOST"] = TENANT_B.host
    assert_problem(owner_a.get("/api/v1/projects"), 401, "not_authenticated")


# QUERIES --------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 50])
def test_project_list_queries_do_not_grow(
    owner_a: Client, tenant_a: Tenant, rows: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    with tenant_context(tenant_a):
        for project in ProjectFactory.create_batch(rows):
            TaskFactory.create(project=project)
    owner_a.get("/api/v1/projects")  # warm: the host's route is cached after this

    # search path, session, user, one page of projects with their open task counts
    with django_assert_num_queries(4):
        response = owner_a.get("/api/v1/projects?page_size=100")

    assert len(response.json()["results"]) == rows


@pytest.mark.parametrize("rows", [1, 50])
def test_task_list_queries_do_not_grow(
    owner_a: Client, tenant_a: Tenant, rows: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create()
        for assignee in UserFactory.create_batch(rows):
            TaskFactory.create(project=project, assignee=assignee)
    path = f"/api/v1/projects/{project.pk}/tasks?page_size=100"
    owner_a.get(path)  # warm: the host's route is cached after this

    # search path, session, user, project, one page of tasks
    with django_assert_num_queries(5):
        response = owner_a.get(path)

    assert len(response.json()["results"]) == rows


# SCHEMA ---------------------------------------------------------------------------------


def test_the_schema_describes_each_operation_its_bodies_and_parameters() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)

    def operation(path: str, method: str) -> dict[str, Any]:
        found: dict[str, Any] = schema["paths"][path][method]
        return found

    def body(path: str, method: str) -> str:
        content = operation(path, method)["requestBody"]["content"]
        return str(content["application/json"]["schema"]["$ref"])

    def answer(path: str, method: str, status: str) -> str:
        content = operation(path, method)["responses"][status]["content"]
        return str(content["application/json"]["schema"]["$ref"])

    projects, project = "/api/v1/projects", "/api/v1/projects/{project_id}"
    tasks, task = f"{project}/tasks", f"{project}/tasks/{{task_id}}"
    refs = "#/components/schemas/"
    assert answer(projects, "get", "200") == f"{refs}PaginatedProjectSummaryList"
    assert body(projects, "post") == f"{refs}ProjectCreateInput"
    assert answer(projects, "post", "201") == f"{refs}ProjectSummary"
    assert answer(project, "get", "200") == f"{refs}ProjectSummary"
    assert body(project, "patch") == f"{refs}PatchedProjectUpdateInput"
    assert answer(tasks, "get", "200") == f"{refs}PaginatedTaskSummaryList"
    assert body(tasks, "post") == f"{refs}TaskCreateInput"
    assert answer(tasks, "post", "201") == f"{refs}TaskSummary"
    assert body(task, "patch") == f"{refs}PatchedTaskUpdateInput"
    parameters = {p["name"] for p in operation(tasks, "get")["parameters"]}
    assert parameters == {"project_id", "cursor", "page_size", "status", "assignee"}
