"""`tenants … --json`: every outcome is JSON on stdout, a failure `{"error": {code, message}}`
with a non-zero exit, whichever verb and whatever went wrong (argparse's complaints too)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from shared_apps.fleet.management.commands import tenants as tenants_command
from shared_apps.fleet.migrate.ledger import RunLock
from shared_apps.tenants.models import Tenant
from tests.fixtures import CliResult


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def feed(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    return feed


def failing(*args: str) -> dict[str, Any]:
    """Run a verb that must fail; return its one JSON document."""
    out = io.StringIO()
    # Before `--`: what follows it belongs to the command `tenants run` runs.
    at = args.index("--") if "--" in args else len(args)
    with pytest.raises(CommandError):
        call_command("tenants", *args[:at], "--json", *args[at:], stdout=out)
    [line] = out.getvalue().splitlines()[-1:]
    document: dict[str, Any] = json.loads(line)
    return document


def error_of(result: CliResult) -> dict[str, str]:
    assert result.returncode != 0
    error: dict[str, str] = json.loads(result.stdout.splitlines()[-1])["error"]
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["suspend", "nobody", "--reason", "x"], "tenant_not_found"),
        (["resume", "nobody"], "tenant_not_found"),
        (["archive", "nobody"], "tenant_not_found"),
        (["restore", "alpha"], "tenant_state_invalid"),  # not archived
        (["delete", "alpha"], "tenant_state_invalid"),  # no --yes
        (["export", "nobody"], "tenant_not_found"),
        (["run", "alpha", "--", "migrate"], "command_refused"),
        (["run", "alpha", "check"], "arguments_invalid"),  # no --
        (["run", "alpha", "--", "no_such_command"], "arguments_invalid"),
        (["run", "nobody", "--", "check"], "tenant_not_found"),
        (["migrate", "--parallel", "0"], "arguments_invalid"),
        (["staff", "create", "--email", "not-an-address", "--password-stdin"], "email_invalid"),
    ],
)
def test_each_verbs_refusal_is_a_json_error(
    tenant_a: Tenant, stdin: Callable[[str], None], args: list[str], code: str
) -> None:
    stdin("Correct-Horse-Battery-9\n")
    document = failing(*args)
    assert document["error"]["code"] == code
    assert document["error"]["message"]


def test_create_of_a_taken_subdomain_is_a_json_error(tenant_a: Tenant) -> None:
    document = failing(
        "create", "--subdomain", "alpha", "--name", "Again", "--owner-email", "x@alpha.test"
    )
    assert document == {
        "error": {"code": "subdomain_taken", "message": "The subdomain 'alpha' is already taken."}
    }


def test_export_onto_an_existing_file_is_a_json_error(tenant_a: Tenant, tmp_path: Path) -> None:
    target = tmp_path / "taken.zip"
    target.write_bytes(b"keep me")
    document = failing("export", "alpha", "--output", str(target))
    assert document["error"]["code"] == "export_target_exists"
    assert target.read_bytes() == b"keep me"


def test_verify_with_quarantined_tenants_is_one_document_with_the_error(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Found:
        findings: list[Any] = []
        released: list[str] = []
        tenants: list[Any] = []
        unchecked: list[str] = []
        still_quarantined = ["alpha"]

        def as_dict(self) -> dict[str, Any]:
            return {"quarantined": ["alpha"], "released": []}

    # The fault: a tenant whose schema lost a table (verify's own tests make one for real).
    monkeypatch.setattr(tenants_command, "fleet_verify", lambda **_: Found())
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 tenant"):
        call_command("tenants", "verify", "--json", stdout=out)
    [document] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert document["quarantined"] == ["alpha"]
    assert document["error"]["code"] == "tenants_quarantined"


def test_a_held_migration_lock_is_a_json_error(manage_cli: Callable[..., CliResult]) -> None:
    with RunLock() as acquired:
        assert acquired
        result = manage_cli("tenants", "migrate", "--json")
    assert error_of(result)["code"] == "migration_running"
    assert result.returncode == 1


@pytest.mark.parametrize(
    "args",
    [
        ["tenants", "frobnicate", "--json"],  # unknown verb
        ["tenants", "list", "--status", "sleeping", "--json"],  # bad choice
        ["tenants", "suspend", "alpha", "--json"],  # --reason missing
        ["tenants", "staff", "create", "--json"],  # --email missing
        ["tenants", "migrate", "--parallel", "many", "--json"],  # not a number
    ],
)
def test_argument_errors_are_json_too(
    manage_cli: Callable[..., CliResult], args: list[str]
) -> None:
    result = manage_cli(*args)
    assert error_of(result)["code"] == "arguments_invalid"
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_without_json_argument_errors_stay_argparse_text(
    manage_cli: Callable[..., CliResult],
) -> None:
    result = manage_cli("tenants", "list", "--status", "sleeping")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "invalid choice" in result.stderr


def test_json_after_the_separator_belongs_to_the_command_run(
    manage_cli: Callable[..., CliResult],
) -> None:
    # `--json` after `--` is the inner command's; the refusal is then plain text.
    result = manage_cli("tenants", "run", "alpha", "--", "flush", "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "refuses 'flush'" in result.stderr


def test_an_unreachable_database_is_a_json_error(manage_cli: Callable[..., CliResult]) -> None:
    result = manage_cli(
        "tenants",
        "list",
        "--json",
        env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"},
    )
    assert error_of(result)["code"] == "database_unavailable"
    assert "Traceback" not in result.stderr
