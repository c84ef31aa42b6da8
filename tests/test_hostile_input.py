"""Hostile input gets a clear 4xx or is made harmless, and changes nothing else."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from core.errors import NameInvalidError, name_clean
from core.text import single_line, terminal_safe
from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.projects.models import Attachment, Export, Project
from tenant_apps.projects.services import export_build, spreadsheet_safe
from tests.factories import ExportFactory, ProjectFactory, TaskFactory
from tests.fixtures import TENANT_A, browser_for


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Acme\r\nBcc: all@evil.test", "Acme Bcc: all@evil.test"),
        ("\x1b[31mRed\x1b[0m Inc", "[31mRed [0m Inc"),
        ("Right\u202eto left", "Right to left"),
        ("  Plain   name  ", "Plain name"),
    ],
)
def test_names_lose_their_control_characters_in_one_place(typed: str, stored: str) -> None:
    assert single_line(typed) == stored
    assert name_clean(typed) == stored


def test_a_name_of_control_characters_only_is_refused() -> None:
    with pytest.raises(NameInvalidError, match="1 to 120 characters"):
        name_clean("\r\n\x1b\t")


def test_a_project_named_with_a_line_break_is_stored_on_one_line(
    tenant_a: Tenant, owner_a: Client
) -> None:
    response = owner_a.post("/projects/new/", {"name": "Q3\r\nplan\x07", "description": ""})
    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert list(Project.objects.values_list("name", flat=True)) == ["Q3 plan"]


def test_tenants_list_shows_control_characters_instead_of_obeying_them(tenant_a: Tenant) -> None:
    with public_context():
        Tenant.objects.filter(pk=tenant_a.pk).update(name="Evil\nfake  active  row\x1b[2J")
    out = io.StringIO()
    call_command("tenants", "list", stdout=out)
    lines = out.getvalue().splitlines()
    [row] = [line for line in lines if line.startswith("alpha")]
    assert row.endswith("Evil\\x0afake  active  row\\x1b[2J")
    assert "\x1b" not in out.getvalue()
    listed = io.StringIO()
    call_command("tenants", "list", "--json", stdout=listed)
    names = [tenant["name"] for tenant in json.loads(listed.getvalue())["tenants"]]
    assert "Evil\nfake  active  row\x1b[2J" in names  # JSON carries the value, escaped


def test_terminal_safe_keeps_the_layout_but_not_the_escapes() -> None:
    assert terminal_safe("line one\nline \x1b[1mtwo") == "line one\nline \\x1b[1mtwo"


@pytest.mark.parametrize(
    ("title", "cell"),
    [
        ('=HYPERLINK("http://evil.test","click")', '\'=HYPERLINK("http://evil.test","click")'),
        ("+1+1", "'+1+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTabbed", "'\tTabbed"),
        ("\rReturn", "'\rReturn"),
        ("Plain title", "Plain title"),
    ],
)
def test_exports_neutralise_cells_that_a_spreadsheet_would_run(title: str, cell: str) -> None:
    assert spreadsheet_safe(title) == cell


def test_an_export_file_holds_no_formula(in_tenant_a: Tenant) -> None:
    project = ProjectFactory.create()
    task = TaskFactory.create(project=project)
    # Titles are cleaned on the way in; one stored before that (or by an import) still is safe.
    type(task).objects.filter(pk=task.pk).update(title="=cmd|' /C calc'!A0")
    export = export_build(export=ExportFactory.create(project=project))
    with export.file.open("rb") as stored:
        rows = list(csv.reader(io.StringIO(stored.read().decode())))
    assert rows[1][1] == "'=cmd|' /C calc'!A0"
    assert Export.objects.get(pk=export.pk).status == Export.Status.DONE


def test_a_file_named_beyond_the_file_systems_limit_is_stored_and_keeps_its_name(
    tenant_a: Tenant, owner_a: Client
) -> None:
    with tenant_context(tenant_a):
        project = ProjectFactory.create()
    name = "é" * 200 + ".pdf"  # 402 bytes in UTF-8; a file name may have 255
    upload = SimpleUploadedFile(name, b"%PDF-1.4", content_type="application/pdf")

    response = owner_a.post(f"/projects/{project.pk}/attachments/", {"file": upload})

    assert response.status_code == 302
    with tenant_context(tenant_a):
        attachment = Attachment.objects.get(project=project)
    assert attachment.original_name == "é" * 196 + ".pdf"
    stored = attachment.file.name.rsplit("/", 1)[-1]
    assert len(stored.encode()) <= 84
    assert stored.endswith(".pdf")


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deeply_nested_json_is_a_400_problem(root: Client, depth: int) -> None:
    body = "[" * depth + "]" * depth
    response = root.post("/api/v1/signup", data=body, content_type="application/json")
    assert (response.status_code, response["Content-Type"]) == (400, "application/problem+json")
    assert response.json()["code"] == "parse_error"


def test_a_body_over_the_upload_limit_is_a_problem(root: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"name": "x" * 4096})
    response = root.post("/api/v1/signup", data=body, content_type="application/json")
    assert (response.status_code, response["Content-Type"]) == (413, "application/problem+json")
    assert response.json()["code"] == "request_too_large"


@pytest.mark.parametrize("field", ["email"])
def test_an_email_over_254_characters_is_a_field_error_not_a_500(
    root: Client, field: str, fresh_signup_throttle: None
) -> None:
    long_email = "a" * 250 + "@x.test"
    body = {"name": "Long", "subdomain": "longmail", "email": long_email, "password": "x" * 20}
    api = root.post("/api/v1/signup", data=body, content_type="application/json")
    assert (api.status_code, api.json()["code"]) == (400, "email_invalid")
    page = root.post("/signup/", body)
    assert page.status_code == 200
    assert field in page.context["form"].errors
    with public_context():
        assert not Tenant.objects.filter(subdomain="longmail").exists()


def test_a_workspace_named_with_a_line_break_still_sends_invitations(
    tenant_a: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    from django.core import mail

    with public_context():
        Tenant.objects.filter(pk=tenant_a.pk).update(name="Alpha\r\nInc")
    tenant_a.refresh_from_db()
    with tenant_context(tenant_a):
        owner = User.objects.get(email=TENANT_A.owner_email)
    client = browser_for(tenant_a, owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/members/invite/", {"email": "n@alpha.test", "role": "member"})
    assert response.status_code == 302
    assert mail.outbox[0].subject == "You are invited to Alpha Inc"
