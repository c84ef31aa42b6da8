"""`tenants run` stays inside its tenant, `tenants export` writes where git never looks, and
`tenants staff create` makes the first platform operator."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.fleet.run import RUN_REFUSED
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.projects.models import Project
from tests.factories import ProjectFactory
from tests.fixtures import ROOT, CliResult, sign_in

STAFF_PASSWORD = "Platform-Operator-Passphrase-42"


def run_tenants(*args: str) -> str:
    out = io.StringIO()
    call_command("tenants", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def feed(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    return feed


def applied_migrations(tenant: Tenant) -> list[tuple[Any, ...]]:
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("SELECT app, name, applied FROM django_migrations ORDER BY id")
        return cursor.fetchall()


# -- tenants run ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["migrate", "migrate_schemas", "flush", "all_tenants_command"])
def test_run_refuses_commands_that_reach_other_schemas(
    tenant_a: Tenant, tenant_b: Tenant, name: str
) -> None:
    with tenant_context(tenant_b):
        ProjectFactory.create(name="Beta's plan")
    before = applied_migrations(tenant_b)

    with pytest.raises(CommandError, match=f"refuses '{name}'"):
        run_tenants("run", "alpha", "--", name, "--no-input")

    # tenant B (and public) are exactly as they were
    assert applied_migrations(tenant_b) == before
    with tenant_context(tenant_b):
        assert list(Project.objects.values_list("name", flat=True)) == ["Beta's plan"]
    with public_context():
        assert Tenant.objects.filter(pk__in=[tenant_a.pk, tenant_b.pk]).count() == 2
        record = AuditRecord.objects.filter(action="tenant.run").latest("created_at")
    assert (record.outcome, record.detail["error"]) == ("failed", "command_refused")


def test_the_refusal_points_at_the_fleet_verb(tenant_a: Tenant) -> None:
    with pytest.raises(CommandError, match=r"use `tenants migrate --tenant SUBDOMAIN`"):
        run_tenants("run", "alpha", "--", "migrate")
    with pytest.raises(CommandError, match="refuses 'migrate'"):
        run_tenants("run", "--all", "--", "migrate")


def test_every_django_tenants_command_is_refused() -> None:
    import django_tenants.management.commands as stock

    names = {path.stem for path in Path(stock.__file__).parent.glob("*.py")} - {"__init__"}
    assert names <= set(RUN_REFUSED)


def test_run_still_runs_a_command_inside_its_tenant(tenant_a: Tenant) -> None:
    output = run_tenants("run", "alpha", "--", "check")
    assert "== alpha (succeeded)" in output


# -- tenants export ------------------------------------------------------------------------


def test_export_without_output_writes_into_the_export_folder(
    manage_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    result = manage_cli("tenants", "export", "alpha", "--json", env={"EXPORT_DIR": str(folder)})

    assert result.returncode == 0, result.stderr
    written = Path(json.loads(result.stdout)["path"])
    assert written.parent == folder
    assert written.name.startswith("alpha-")
    assert written.suffix == ".zip"
    assert written.exists()
    assert not list(ROOT.glob("alpha-*.zip"))  # the working directory (a checkout) stays clean


def test_the_default_export_folder_is_ignored_by_git() -> None:
    default = Path(settings.EXPORT_DIR)
    assert default == ROOT / ".devdata" / "exports"
    assert "/.devdata/" in (ROOT / ".gitignore").read_text().splitlines()


# -- tenants staff create ------------------------------------------------------------------


def test_staff_create_makes_a_platform_operator_in_public_only(
    tenant_a: Tenant, stdin: Callable[[str], None]
) -> None:
    stdin(STAFF_PASSWORD + "\n")
    result = json.loads(
        run_tenants(
            "staff", "create", "--email", " Ops@Platform.test ", "--password-stdin", "--json"
        )
    )
    assert result == {
        "created": True,
        "email": "ops@platform.test",
        "is_staff": True,
        "is_superuser": True,
        "second_factor": "enrol at first sign-in",
    }
    with public_context():
        operator = User.objects.get(email="ops@platform.test")
        assert (operator.is_staff, operator.is_superuser) == (True, True)
        assert operator.check_password(STAFF_PASSWORD)
        record = AuditRecord.objects.filter(action="staff.create").latest("created_at")
        assert (record.outcome, record.detail["email"]) == ("succeeded", "ops@platform.test")
        assert STAFF_PASSWORD not in json.dumps(record.detail)
    with tenant_context(tenant_a):
        assert not User.objects.filter(email="ops@platform.test").exists()


def test_a_new_operator_enrols_a_second_factor_at_first_sign_in(
    db: None, stdin: Callable[[str], None]
) -> None:
    stdin(STAFF_PASSWORD + "\n")
    run_tenants("staff", "create", "--email", "ops@platform.test", "--password-stdin")

    client = Client(HTTP_HOST="localhost")
    assert sign_in(client, "ops@platform.test", STAFF_PASSWORD).status_code == 302
    response = client.get(f"/{settings.ADMIN_URL}", follow=True)
    assert [url for url, _ in response.redirect_chain][-2:] == [
        "/account/two_factor/setup/",
        "/account/two_factor/setup/confirm/",
    ]


def test_staff_create_refuses_a_second_account_with_the_same_email(
    db: None, stdin: Callable[[str], None]
) -> None:
    stdin(STAFF_PASSWORD + "\n")
    run_tenants("staff", "create", "--email", "ops@platform.test", "--password-stdin")
    stdin(STAFF_PASSWORD + "\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match="already exists"):
        call_command(
            "tenants",
            "staff",
            "create",
            "--email",
            "OPS@platform.test",
            "--password-stdin",
            "--json",
            stdout=out,
        )
    assert json.loads(out.getvalue())["error"]["code"] == "staff_exists"
    with public_context():
        assert User.objects.filter(email__iexact="ops@platform.test").count() == 1


@pytest.mark.parametrize(
    ("password", "code"),
    [("short", "password_rejected"), ("", "arguments_invalid")],
)
def test_staff_create_refuses_a_weak_or_missing_password(
    db: None, stdin: Callable[[str], None], password: str, code: str
) -> None:
    stdin(password + "\n")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "tenants",
            "staff",
            "create",
            "--email",
            "ops@platform.test",
            "--password-stdin",
            "--json",
            stdout=out,
        )
    assert json.loads(out.getvalue())["error"]["code"] == code
    with public_context():
        assert not User.objects.filter(email="ops@platform.test").exists()


def test_staff_create_without_a_terminal_needs_password_stdin(
    db: None, stdin: Callable[[str], None]
) -> None:
    stdin("")  # not a terminal: never a generated operator password
    with pytest.raises(CommandError, match="--password-stdin"):
        run_tenants("staff", "create", "--email", "ops@platform.test")
