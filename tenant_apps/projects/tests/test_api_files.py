"""A project's files and exports through the API: uploads with the page's limits, signed
host-bound download links, exports queued for the worker, one tenant's rows only."""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.apikeys.tests.helpers import bearer, key_in
from tenant_apps.members import policy
from tenant_apps.projects.api.parsers import MULTIPART_FRAMING_BYTES, AttachmentUploadParser
from tenant_apps.projects.errors import AttachmentTooLargeError
from tenant_apps.projects.models import Attachment, Export, Project
from tenant_apps.projects.tasks import export_build_task
from tests.api import assert_problem, field_errors, post_json, signed_in_as
from tests.factories import AttachmentFactory, ExportFactory, ProjectFactory, TaskFactory
from tests.fixtures import TENANT_A, TENANT_B


@pytest.fixture
def local_media(settings: Any, tmp_path: Path) -> Path:
    """Media on local disk under a fresh root (the embedded default, as in development)."""
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tenancy.storage.TenantFileSystemStorage"},
    }
    return tmp_path


@pytest.fixture
def project_a(tenant_a: Tenant) -> Project:
    with tenant_context(tenant_a):
        return ProjectFactory.create(name="Apollo")


def project_in(tenant: Tenant, *, other_than: Project) -> Project:
    """A project of `tenant` whose id differs from `other_than`'s: each schema numbers its
    own rows, so the two may share an id, which would hide what an isolation test checks."""
    with tenant_context(tenant):
        project = ProjectFactory.create()
        if project.pk == other_than.pk:
            project = ProjectFactory.create()
    return project


def upload(client: Client, project_id: int, name: str, body: bytes, **extra: Any) -> Any:
    file = SimpleUploadedFile(name, body, content_type="text/plain")
    return client.post(f"/api/v1/projects/{project_id}/attachments", {"file": file}, **extra)


def without(role: str, action: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Take one action away from a role, as a stricter policy would."""
    allowed = policy.ACTIONS_BY_ROLE[User.Role(role)] - {action}
    monkeypatch.setitem(policy.ACTIONS_BY_ROLE, User.Role(role), allowed)


# ATTACHMENTS ----------------------------------------------------------------------------


def successes(responses: dict[str, object]) -> list[str]:
    """The success statuses an operation documents (its problem answers aside)."""
    return [status for status in responses if status.startswith("2")]


def test_upload_answers_201_with_a_signed_link_on_the_workspace_host(
    local_media: Path, owner_a: Client, tenant_a: Tenant, project_a: Project
) -> None:
    response = upload(owner_a, project_a.pk, "plan.txt", b"alpha's plan")

    assert response.status_code == 201, response.content
    body = response.json()
    with tenant_context(tenant_a):
        attachment = Attachment.objects.get()
        owner = User.objects.get(email=TENANT_A.owner_email)
    assert body == {
        "id": attachment.pk,
        "project": project_a.pk,
        "name": "plan.txt",
        "size": 12,
        "content_type": "text/plain",
        "uploaded_by": owner.pk,
        "created_at": body["created_at"],
        "download_url": body["download_url"],
    }
    link = urlsplit(body["download_url"])
    assert (link.scheme, link.netloc, link.path[:7]) == ("http", TENANT_A.host, "/files/")
    served = Client(HTTP_HOST=TENANT_A.host).get(link.path)  # the link alone is enough
    assert (served.status_code, served.getvalue()) == (200, b"alpha's plan")
    assert 'filename="plan.txt"' in served["Content-Disposition"]


def test_an_s3_download_url_is_the_workspace_link_never_a_bucket_url(
    s3_storage: None, owner_a: Client, project_a: Project
) -> None:
    body = upload(owner_a, project_a.pk, "plan.txt", b"in the bucket").json()

    link = urlsplit(body["download_url"])
    assert (link.netloc, link.path[:7]) == (TENANT_A.host, "/files/")
    assert "X-Amz" not in body["download_url"]
    listed = owner_a.get(f"/api/v1/projects/{project_a.pk}/attachments").json()["results"]
    assert urlsplit(listed[0]["download_url"]).netloc == TENANT_A.host
    # The link redirects to a URL presigned for seconds, as the page's does.
    served = owner_a.get(link.path)
    assert served.status_code == 302
    with urllib.request.urlopen(served["Location"]) as s3_answer:
        assert s3_answer.read() == b"in the bucket"


def test_attachment_list_and_detail(owner_a: Client, tenant_a: Tenant, project_a: Project) -> None:
    with tenant_context(tenant_a):
        first, second = AttachmentFactory.create_batch(2, project=project_a)
        AttachmentFactory.create()  # another project's

    listed = owner_a.get(f"/api/v1/projects/{project_a.pk}/attachments").json()
    detail = owner_a.get(f"/api/v1/projects/{project_a.pk}/attachments/{second.pk}")

    assert [row["id"] for row in listed["results"]] == [first.pk, second.pk]  # by id
    assert detail.status_code == 200
    assert (detail.json()["name"], detail.json()["size"]) == (second.original_name, 1024)


def test_a_file_of_another_project_is_a_404_problem(
    owner_a: Client, tenant_a: Tenant, project_a: Project
) -> None:
    with tenant_context(tenant_a):
        elsewhere = AttachmentFactory.create()

    response = owner_a.get(f"/api/v1/projects/{project_a.pk}/attachments/{elsewhere.pk}")

    assert_problem(response, 404, "attachment_not_found")


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({}, "file", "required"),
        ({"file": "not a file"}, "file", "invalid"),
        ({"file": SimpleUploadedFile("empty.txt", b"")}, "file", "empty"),
        ({"file": SimpleUploadedFile("a.txt", b"x"), "name": "b.txt"}, "name", "unknown_field"),
    ],
)
def test_upload_input_is_checked(
    owner_a: Client,
    tenant_a: Tenant,
    project_a: Project,
    fields: dict[str, Any],
    field: str,
    code: str,
) -> None:
    response = owner_a.post(f"/api/v1/projects/{project_a.pk}/attachments", fields)

    body = assert_problem(response, 400, "validation_failed")
    assert field_errors(body) == [(field, code)]
    with tenant_context(tenant_a):
        assert not Attachment.objects.exists()


def test_a_file_above_the_limit_is_refused_as_on_the_page(
    local_media: Path, settings: Any, owner_a: Client, tenant_a: Tenant, project_a: Project
) -> None:
    settings.PROJECTS_ATTACHMENT_MAX_BYTES = 1024 * 1024

    response = upload(owner_a, project_a.pk, "big.bin", b"x" * (1024 * 1024 + 1))

    body = assert_problem(response, 400, "attachment_too_large")
    assert field_errors(body) == [("file", "attachment_too_large")]
    with tenant_context(tenant_a):
        assert not Attachment.objects.exists()
    assert not any(path.is_file() for path in local_media.rglob("*"))


def test_a_body_declared_too_large_is_refused_before_it_is_read(settings: Any) -> None:
    settings.PROJECTS_ATTACHMENT_MAX_BYTES = 1024

    class Unread(io.BytesIO):
        def read(self, *args: Any) -> bytes:
            raise AssertionError("the body was read")

    declared = str(1024 + MULTIPART_FRAMING_BYTES + 1)
    context = {"request": SimpleNamespace(META={"CONTENT_LENGTH": declared})}
    with pytest.raises(AttachmentTooLargeError):
        AttachmentUploadParser().parse(Unread(), "multipart/form-data", context)


def test_upload_takes_multipart_only(owner_a: Client, project_a: Project) -> None:
    response = post_json(owner_a, f"/api/v1/projects/{project_a.pk}/attachments", {"file": "x"})
    assert_problem(response, 415, "unsupported_media_type")


def test_other_endpoints_still_take_json_only(owner_a: Client, project_a: Project) -> None:
    response = owner_a.post(f"/api/v1/projects/{project_a.pk}/exports", {"x": "form"})
    assert_problem(response, 415, "unsupported_media_type")


def test_a_role_the_policy_refuses_cannot_upload(
    local_media: Path, tenant_a: Tenant, project_a: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    member, _ = signed_in_as(tenant_a, User.Role.MEMBER)
    without(User.Role.MEMBER, "attachment.create", monkeypatch)

    assert_problem(upload(member, project_a.pk, "a.txt", b"x"), 403, "permission_denied")
    with tenant_context(tenant_a):
        assert not Attachment.objects.exists()


def test_a_member_uploads_and_reads_files(
    local_media: Path, tenant_a: Tenant, project_a: Project
) -> None:
    member, person = signed_in_as(tenant_a, User.Role.MEMBER)

    created = upload(member, project_a.pk, "notes.txt", b"member's notes")
    listed = member.get(f"/api/v1/projects/{project_a.pk}/attachments")

    assert (created.status_code, created.json()["uploaded_by"]) == (201, person.pk)
    assert [row["id"] for row in listed.json()["results"]] == [created.json()["id"]]


def test_a_read_key_lists_files_but_cannot_upload(
    local_media: Path, client_a: Client, tenant_a: Tenant, project_a: Project
) -> None:
    _, read = key_in(tenant_a, scopes=["read"])
    _, write = key_in(tenant_a, scopes=["write"])
    path = f"/api/v1/projects/{project_a.pk}/attachments"

    assert client_a.get(path, headers=bearer(read)).status_code == 200
    refused = upload(client_a, project_a.pk, "a.txt", b"x", headers=bearer(read))
    assert_problem(refused, 403, "permission_denied")
    with tenant_context(tenant_a):
        assert not Attachment.objects.exists()
    assert upload(client_a, project_a.pk, "a.txt", b"x", headers=bearer(write)).status_code == 201


def test_tenant_b_never_reaches_tenant_a_files(
    local_media: Path,
    owner_a: Client,
    owner_b: Client,
    tenant_a: Tenant,
    tenant_b: Tenant,
    project_a: Project,
) -> None:
    created = upload(owner_a, project_a.pk, "secret.txt", b"alpha only").json()
    project_b = project_in(tenant_b, other_than=project_a)
    _, key_of_a = key_in(tenant_a, scopes=["admin"])
    a_path = f"/api/v1/projects/{project_a.pk}/attachments"

    # A's ids on B's host: A's project is unknown there, and so is A's file in B's project.
    assert_problem(owner_b.get(a_path), 404, "project_not_found")
    assert_problem(owner_b.get(f"{a_path}/{created['id']}"), 404, "project_not_found")
    b_path = f"/api/v1/projects/{project_b.pk}/attachments"
    assert_problem(owner_b.get(f"{b_path}/{created['id']}"), 404, "attachment_not_found")
    assert owner_b.get(b_path).json()["results"] == []
    # A's key is unknown on B's host; A's signed link does not serve there.
    machine_on_b = Client(HTTP_HOST=TENANT_B.host)
    refused = machine_on_b.get(b_path, headers=bearer(key_of_a))
    assert_problem(refused, 401, "authentication_failed")
    link = urlsplit(created["download_url"]).path
    assert Client(HTTP_HOST=TENANT_B.host).get(link).status_code == 404
    with tenant_context(tenant_b):
        assert not Attachment.objects.exists()


@pytest.mark.parametrize("rows", [1, 50])
def test_attachment_list_queries_do_not_grow(
    owner_a: Client,
    tenant_a: Tenant,
    project_a: Project,
    rows: int,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    with tenant_context(tenant_a):
        AttachmentFactory.create_batch(rows, project=project_a)
    path = f"/api/v1/projects/{project_a.pk}/attachments?page_size=100"
    owner_a.get(path)  # warm: the host's route is cached after this

    # search path, session, user, project, one page of files (links are signed, not queried)
    with django_assert_num_queries(5):
        response = owner_a.get(path)

    assert len(response.json()["results"]) == rows


# EXPORTS --------------------------------------------------------------------------------


def test_export_request_answers_202_queued_and_the_worker_is_told_on_commit(
    owner_a: Client,
    tenant_a: Tenant,
    project_a: Project,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_json(owner_a, f"/api/v1/projects/{project_a.pk}/exports", {})

    assert response.status_code == 202, response.content
    body = response.json()
    with tenant_context(tenant_a):
        export = Export.objects.get()
        owner = User.objects.get(email=TENANT_A.owner_email)
    assert body == {
        "id": export.pk,
        "project": project_a.pk,
        "status": "pending",
        "rows": 0,
        "requested_by": owner.pk,
        "created_at": body["created_at"],
        "finished_at": None,
        "download_url": None,
    }
    assert len(callbacks) == 1  # the build task, queued once the export row commits


def test_an_export_without_a_body_is_requested_too(owner_a: Client, project_a: Project) -> None:
    response = owner_a.generic("POST", f"/api/v1/projects/{project_a.pk}/exports")  # no body
    assert (response.status_code, response.json()["status"]) == (202, "pending")


def test_a_ready_export_has_a_signed_link_to_its_csv(
    local_media: Path, owner_a: Client, tenant_a: Tenant, project_a: Project
) -> None:
    with tenant_context(tenant_a):
        TaskFactory.create(project=project_a, title="Launch")
    export_id = post_json(owner_a, f"/api/v1/projects/{project_a.pk}/exports", {}).json()["id"]
    with tenant_context(tenant_a):
        export_build_task(export_id=export_id)  # what the worker runs

    detail = owner_a.get(f"/api/v1/projects/{project_a.pk}/exports/{export_id}").json()

    assert (detail["status"], detail["rows"]) == ("done", 1)
    assert detail["finished_at"] is not None
    link = urlsplit(detail["download_url"])
    assert (link.netloc, link.path[:7]) == (TENANT_A.host, "/files/")
    served = Client(HTTP_HOST=TENANT_A.host).get(link.path)
    assert served.status_code == 200
    assert b"Launch" in served.getvalue()


def test_export_list_and_status(owner_a: Client, tenant_a: Tenant, project_a: Project) -> None:
    with tenant_context(tenant_a):
        queued = ExportFactory.create(project=project_a)
        failed = ExportFactory.create(project=project_a, status=Export.Status.FAILED)
        ExportFactory.create()  # another project's

    listed = owner_a.get(f"/api/v1/projects/{project_a.pk}/exports").json()["results"]

    assert [(row["id"], row["status"]) for row in listed] == [
        (queued.pk, "pending"),
        (failed.pk, "failed"),
    ]
    assert [row["download_url"] for row in listed] == [None, None]


def test_an_export_of_another_project_is_a_404_problem(
    owner_a: Client, tenant_a: Tenant, project_a: Project
) -> None:
    with tenant_context(tenant_a):
        elsewhere = ExportFactory.create()

    response = owner_a.get(f"/api/v1/projects/{project_a.pk}/exports/{elsewhere.pk}")

    assert_problem(response, 404, "export_not_found")


def test_export_request_refuses_fields(
    owner_a: Client, tenant_a: Tenant, project_a: Project
) -> None:
    response = post_json(owner_a, f"/api/v1/projects/{project_a.pk}/exports", {"format": "xlsx"})

    body = assert_problem(response, 400, "validation_failed")
    assert field_errors(body) == [("format", "unknown_field")]
    with tenant_context(tenant_a):
        assert not Export.objects.exists()


def test_a_role_the_policy_refuses_cannot_export(
    tenant_a: Tenant, project_a: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    member, _ = signed_in_as(tenant_a, User.Role.MEMBER)
    without(User.Role.MEMBER, "project.export", monkeypatch)
    path = f"/api/v1/projects/{project_a.pk}/exports"

    assert_problem(post_json(member, path, {}), 403, "permission_denied")
    assert_problem(member.get(path), 403, "permission_denied")
    with tenant_context(tenant_a):
        assert not Export.objects.exists()


def test_a_read_key_sees_exports_but_cannot_request_one(
    client_a: Client, tenant_a: Tenant, project_a: Project
) -> None:
    _, read = key_in(tenant_a, scopes=["read"])
    _, write = key_in(tenant_a, scopes=["write"])
    path = f"/api/v1/projects/{project_a.pk}/exports"

    assert client_a.get(path, headers=bearer(read)).status_code == 200
    assert_problem(post_json(client_a, path, {}, headers=bearer(read)), 403, "permission_denied")
    with tenant_context(tenant_a):
        assert not Export.objects.exists()
    assert post_json(client_a, path, {}, headers=bearer(write)).status_code == 202


def test_tenant_b_never_reaches_tenant_a_exports(
    owner_b: Client, tenant_a: Tenant, tenant_b: Tenant, project_a: Project
) -> None:
    with tenant_context(tenant_a):
        export = ExportFactory.create(project=project_a)
    project_b = project_in(tenant_b, other_than=project_a)
    _, key_of_a = key_in(tenant_a, scopes=["admin"])
    a_path = f"/api/v1/projects/{project_a.pk}/exports"
    b_path = f"/api/v1/projects/{project_b.pk}/exports"

    assert_problem(owner_b.get(f"{a_path}/{export.pk}"), 404, "project_not_found")
    assert_problem(post_json(owner_b, a_path, {}), 404, "project_not_found")
    assert_problem(owner_b.get(f"{b_path}/{export.pk}"), 404, "export_not_found")
    assert owner_b.get(b_path).json()["results"] == []
    machine_on_b = Client(HTTP_HOST=TENANT_B.host)
    refused = post_json(machine_on_b, b_path, {}, headers=bearer(key_of_a))
    assert_problem(refused, 401, "authentication_failed")
    with tenant_context(tenant_b):
        assert not Export.objects.exists()


@pytest.mark.parametrize("rows", [1, 50])
def test_export_list_queries_do_not_grow(
    owner_a: Client,
    tenant_a: Tenant,
    project_a: Project,
    rows: int,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    with tenant_context(tenant_a):
        for index in range(rows):
            status = Export.Status.DONE if index % 2 else Export.Status.PENDING
            file = f"exports/{project_a.pk}/tasks-{index}.csv" if index % 2 else ""
            ExportFactory.create(project=project_a, status=status, file=file)
    path = f"/api/v1/projects/{project_a.pk}/exports?page_size=100"
    owner_a.get(path)  # warm: the host's route is cached after this

    # search path, session, user, project, one page of exports
    with django_assert_num_queries(5):
        response = owner_a.get(path)

    assert len(response.json()["results"]) == rows


# SCHEMA ---------------------------------------------------------------------------------


def test_the_schema_describes_uploads_as_multipart_and_export_requests_as_accepted() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    attachments = schema["paths"]["/api/v1/projects/{project_id}/attachments"]
    exports = schema["paths"]["/api/v1/projects/{project_id}/exports"]
    refs = "#/components/schemas/"

    upload_body = attachments["post"]["requestBody"]["content"]
    assert list(upload_body) == ["multipart/form-data"]
    assert upload_body["multipart/form-data"]["schema"]["$ref"] == f"{refs}AttachmentUploadInput"
    upload_input = schema["components"]["schemas"]["AttachmentUploadInput"]
    assert upload_input["properties"]["file"] == {"type": "string", "format": "binary"}
    assert successes(exports["post"]["responses"]) == ["202"]
    answer = exports["post"]["responses"]["202"]["content"]["application/json"]["schema"]
    assert answer["$ref"] == f"{refs}ExportSummary"
    listed = attachments["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["$ref"] == f"{refs}PaginatedAttachmentSummaryList"
