"""What the `tenants` command needs besides its verbs: who runs it, prompts, output shapes."""

from __future__ import annotations

import getpass
import json
import secrets
import socket
import sys
from typing import Any

from django.core.management.base import OutputWrapper

from core.errors import AppError
from shared_apps.fleet.errors import ArgumentsInvalidError
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.selectors import tenant_primary_host

GENERATED_PASSWORD_BYTES = 18


def cli_actor() -> str:
    """Who runs this command, for the audit trail: `cli:<login>@<host>`."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"cli:{login}@{socket.gethostname()}"


def error_one_line(error: BaseException) -> str:
    """The error's message on one line (its type when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def json_requested(argv: list[str]) -> bool:
    """Whether the command line asks for JSON: `--json` among the `tenants` arguments (what
    follows `--` belongs to the command `tenants run` runs)."""
    own = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in own


def error_document(error: BaseException, *, code: str = "", message: str = "") -> dict[str, Any]:
    """The JSON every verb prints on failure: `{"error": {"code": ..., "message": ...}}`.

    The code is the AppError's (docs/errors.md); `command_failed` for anything else.
    """
    if not code:
        code = error.code if isinstance(error, AppError) else "command_failed"
    if not message:
        message = error.detail if isinstance(error, AppError) else error_one_line(error)
    return {"error": {"code": code, "message": message}}


def tenant_summary(tenant: Tenant) -> dict[str, Any]:
    """The tenant as the verbs print it."""
    return {
        "id": str(tenant.id),
        "subdomain": tenant.subdomain,
        "name": tenant.name,
        "status": tenant.status,
        "schema_name": tenant.schema_name,
        "host": tenant_primary_host(tenant),
        "created_at": tenant.created_at.isoformat(),
    }


def owner_password_read(*, from_stdin: bool, may_prompt: bool) -> tuple[str, bool]:
    """Return the new owner's password and whether it was generated: one line of stdin,
    else a prompt on a terminal (twice), else a strong generated one."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ArgumentsInvalidError("--password-stdin was given but standard input was empty")
        return password, False
    if sys.stdin.isatty() and may_prompt:
        password = getpass.getpass("Owner password (empty to generate one): ")
        if password:
            if getpass.getpass("Repeat the password: ") != password:
                raise ArgumentsInvalidError("the two passwords differ")
            return password, False
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES), True


def staff_password_read(*, from_stdin: bool, may_prompt: bool) -> str:
    """Return a platform operator's password: one line of stdin, else a prompt on a
    terminal (twice). Never generated: nobody should learn an operator's password from a
    terminal's scroll-back."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ArgumentsInvalidError("--password-stdin was given but standard input was empty")
        return password
    if not (sys.stdin.isatty() and may_prompt):
        raise ArgumentsInvalidError("give the password on standard input with --password-stdin")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise ArgumentsInvalidError("the two passwords differ")
    return password


class RunOutput:
    """`tenants run` output: each tenant's as it finishes; with --json, a summary line."""

    def __init__(self, out: OutputWrapper, *, json_lines: bool) -> None:
        self.out = out
        self.json_lines = json_lines

    def tenant(self, outcome: dict[str, Any]) -> None:
        if self.json_lines:
            self.out.write(json.dumps({"event": "tenant", **outcome}))
            return
        self.out.write(f"== {outcome['subdomain']} ({outcome['status']})")
        text = (outcome["output"] + outcome["error"]).rstrip("\n")
        if text:
            self.out.write(text)

    def summary(self, *, tenants: int, failed: list[str]) -> None:
        if self.json_lines:
            self.out.write(json.dumps({"event": "summary", "tenants": tenants, "failed": failed}))
