"""What the `tenants` command needs besides its verbs: who runs it, prompts, output shapes."""

from __future__ import annotations

import getpass
import json
import secrets
import socket
import sys
from typing import Any

from django.core.management.base import CommandError, OutputWrapper

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
            raise CommandError("--password-stdin was given but standard input was empty")
        return password, False
    if sys.stdin.isatty() and may_prompt:
        password = getpass.getpass("Owner password (empty to generate one): ")
        if password:
            if getpass.getpass("Repeat the password: ") != password:
                raise CommandError("the two passwords differ")
            return password, False
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES), True


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
