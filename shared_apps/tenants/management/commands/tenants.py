"""`manage.py tenants <verb>`: the operators' tool for the tenant fleet.

Every verb prints text for people or, with --json, one JSON document for scripts.
Bad input ends with a one-line error and a non-zero exit; nothing is half-done.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import sys
from argparse import REMAINDER, ArgumentParser
from pathlib import Path
from typing import Any

import psycopg
from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, OperationalError
from django.utils import timezone

from core.errors import AppError
from shared_apps.audit.services import audit_record
from shared_apps.tenants.errors import TenantStateError
from shared_apps.tenants.fleet import MigrationReport, run_migrate, tenant_command_run
from shared_apps.tenants.lifecycle import (
    tenant_archive,
    tenant_delete,
    tenant_export,
    tenant_restore,
)
from shared_apps.tenants.migrator import RunLock
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.provisioning import pool_fill, template_refresh
from shared_apps.tenants.selectors import tenant_get, tenant_list, tenant_primary_host
from shared_apps.tenants.services import tenant_create, tenant_resume, tenant_suspend

GENERATED_PASSWORD_BYTES = 18
MAX_PARALLEL = 64
# Tenants with a schema that `tenants run --all` visits.
SERVED = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)


def cli_actor() -> str:
    """Who runs this command, for the audit trail: `cli:<login>@<host>`."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"cli:{login}@{socket.gethostname()}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def tenant_summary(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": str(tenant.id),
        "subdomain": tenant.subdomain,
        "name": tenant.name,
        "status": tenant.status,
        "schema_name": tenant.schema_name,
        "host": tenant_primary_host(tenant),
        "created_at": tenant.created_at.isoformat(),
    }


class Command(BaseCommand):
    help = (
        "Manage tenants: create, list, migrate, suspend, resume, archive, restore, delete, "
        "export, run, template."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

        create = self._verb(verbs, "create", "create a tenant with its owner")
        create.add_argument("--subdomain", required=True)
        create.add_argument("--name", required=True)
        create.add_argument("--owner-email", required=True)
        create.add_argument(
            "--password-stdin", action="store_true", help="read the owner's password from stdin"
        )
        create.add_argument(
            "--if-missing",
            action="store_true",
            help="do nothing (exit 0) when the subdomain already belongs to a tenant",
        )

        self._verb(
            verbs, "template", "rebuild the provisioning template from the migrations on disk"
        )

        suspend = self._verb(
            verbs, "suspend", "stop serving a tenant (nothing is deleted)", one=True
        )
        suspend.add_argument("--reason", required=True, help="why; kept in the audit record")
        self._verb(verbs, "resume", "serve a suspended tenant again", one=True)

        migrate = self._verb(verbs, "migrate", "migrate the public schema, then every tenant")
        migrate.add_argument(
            "--parallel", type=int, default=os.cpu_count() or 1, metavar="N",
            help="worker processes (default: one per CPU)",
        )  # fmt: skip
        migrate.add_argument(
            "--tenant", dest="tenants", nargs="+", default=[], metavar="SUBDOMAIN",
            help="only these tenants",
        )  # fmt: skip
        migrate.add_argument(
            "--dry-run", action="store_true", help="list the pending migrations; change nothing"
        )

        self._verb(verbs, "archive", "dump a tenant's schema to storage, then drop it", one=True)
        self._verb(verbs, "restore", "bring an archived tenant back", one=True)
        delete = self._verb(
            verbs, "delete", "remove a tenant for good: schema, files, cache, rows", one=True
        )
        delete.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
        delete.add_argument(
            "--force", action="store_true", help="also delete a tenant that is not archived"
        )
        export = self._verb(
            verbs, "export", "write a portable zip of a tenant's data (JSON per model, files)",
            one=True,
        )  # fmt: skip
        export.add_argument(
            "--output", type=Path, metavar="PATH",
            help="where to write the zip (default: ./<subdomain>-<time>.zip)",
        )  # fmt: skip

        run = self._verb(
            verbs, "run", "run a manage.py command inside tenants: run [--all] [SUB] -- CMD ..."
        )
        run.add_argument("--all", action="store_true", help="every active and suspended tenant")
        run.add_argument("rest", nargs=REMAINDER, metavar="[SUBDOMAIN] -- COMMAND [ARGS ...]")

        listing = self._verb(verbs, "list", "list tenants")
        listing.add_argument("--status", choices=[choice.value for choice in Tenant.Status])

    def _verb(
        self, verbs: Any, name: str, description: str, *, one: bool = False
    ) -> ArgumentParser:
        """Add a verb with --json; `one`: it acts on the tenant named by a SUBDOMAIN."""
        parser: ArgumentParser = verbs.add_parser(name, help=description)
        if one:
            parser.add_argument("subdomain")
        self._add_json(parser)
        return parser

    @staticmethod
    def _add_json(parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"verb_{options['verb']}")(options)
        except AppError as error:
            raise CommandError(error.detail) from None
        except OperationalError:
            raise  # manage.py turns an unreachable database into its own one line
        except (DatabaseError, psycopg.Error, OSError, RuntimeError) as error:
            raise CommandError(f"{options['verb']} failed: {_one_line(error)}") from None

    # -- verbs ---------------------------------------------------------------------------

    def verb_create(self, options: dict[str, Any]) -> None:
        if options["if_missing"]:
            existing = Tenant.objects.filter(
                subdomain__lower=options["subdomain"].strip().lower()
            ).first()
            if existing is not None:
                self._emit(
                    options,
                    {"created": False, **tenant_summary(existing)},
                    f"Tenant '{existing.subdomain}' already exists.",
                )
                return
        password, generated = self._owner_password(options)
        try:
            created = tenant_create(
                name=options["name"],
                subdomain=options["subdomain"],
                owner_email=options["owner_email"],
                owner_password=password,
                actor=cli_actor(),
            )
        except AppError as error:
            self._audit_failure("tenant.create", options["subdomain"], error)
            raise
        result: dict[str, Any] = {
            "created": True,
            **tenant_summary(created.tenant),
            "owner_email": created.owner.email,
        }
        lines = [
            f"Created tenant '{created.tenant.subdomain}' ({created.tenant.name}) "
            f"at http://{created.domain.domain}/",
            f"Owner: {created.owner.email}",
        ]
        if generated:
            result["generated_password"] = password
            lines.append(f"Owner password (shown once): {password}")
        self._emit(options, result, "\n".join(lines))

    def verb_template(self, options: dict[str, Any]) -> None:
        template = template_refresh()
        pooled = pool_fill()
        audit_record(
            actor=cli_actor(), action="tenants.template", outcome="succeeded",
            migration_state=template.migration_state, pool_schemas_made=pooled,
        )  # fmt: skip
        result = {
            "migration_state": template.migration_state,
            "sql_bytes": len(template.sql),
            "refreshed_at": template.refreshed_at.isoformat(),
            "pool_schemas_made": pooled,
        }
        self._emit(
            options,
            result,
            f"Provisioning template rebuilt ({len(template.sql):,} bytes of SQL, "
            f"migration state {template.migration_state[:12]}); "
            f"{pooled} ready schema(s) added to the pool.",
        )

    def verb_suspend(self, options: dict[str, Any]) -> None:
        tenant = self._audited_lookup(options, "tenant.suspend")
        try:
            tenant = tenant_suspend(tenant=tenant, reason=options["reason"], actor=cli_actor())
        except AppError as error:
            self._audit_failure("tenant.suspend", options["subdomain"], error)
            raise
        self._emit(options, tenant_summary(tenant), f"Suspended '{tenant.subdomain}'.")

    def verb_resume(self, options: dict[str, Any]) -> None:
        tenant = self._audited_lookup(options, "tenant.resume")
        try:
            tenant = tenant_resume(tenant=tenant, actor=cli_actor())
        except AppError as error:
            self._audit_failure("tenant.resume", options["subdomain"], error)
            raise
        self._emit(options, tenant_summary(tenant), f"Resumed '{tenant.subdomain}'.")

    def _audited_lookup(self, options: dict[str, Any], action: str) -> Tenant:
        try:
            return tenant_get(subdomain=options["subdomain"])
        except AppError as error:
            self._audit_failure(action, options["subdomain"], error)
            raise

    def _audit_failure(self, action: str, subdomain: str, error: AppError) -> None:
        audit_record(
            actor=cli_actor(), action=action, outcome="failed", subdomain=subdomain[:63],
            error=error.code, detail=error.detail,
        )  # fmt: skip

    def verb_archive(self, options: dict[str, Any]) -> None:
        tenant = self._audited_lookup(options, "tenant.archive")
        done = tenant_archive(tenant=tenant, actor=cli_actor())
        result = {
            **tenant_summary(done.tenant), "archive": done.archive.storage_name,
            "size_bytes": done.archive.size_bytes, "sha256": done.archive.sha256,
            "seconds": round(done.seconds, 3),
        }  # fmt: skip
        self._emit(
            options, result,
            f"Archived '{tenant.subdomain}': {done.archive.size_bytes:,} bytes in "
            f"{done.archive.storage_name} (under the tenant's storage prefix); schema dropped.",
        )  # fmt: skip

    def verb_restore(self, options: dict[str, Any]) -> None:
        tenant = self._audited_lookup(options, "tenant.restore")
        done = tenant_restore(tenant=tenant, actor=cli_actor())
        source = done.archive.storage_name if done.archive is not None else "its schema"
        result = {
            **tenant_summary(done.tenant), "archive": source,
            "migrations_applied": done.migrations, "seconds": round(done.seconds, 3),
        }  # fmt: skip
        migrated = f"; applied {', '.join(done.migrations)}" if done.migrations else ""
        self._emit(
            options, result,
            f"Restored '{tenant.subdomain}' from {source}{migrated}; it is {done.tenant.status}.",
        )  # fmt: skip

    def verb_delete(self, options: dict[str, Any]) -> None:
        tenant = self._audited_lookup(options, "tenant.delete")
        if not options["yes"]:
            error = TenantStateError(
                f"deleting '{tenant.subdomain}' cannot be undone; add --yes to confirm"
            )
            self._audit_failure("tenant.delete", tenant.subdomain, error)
            raise error
        done = tenant_delete(tenant=tenant, actor=cli_actor(), force=options["force"])
        result = {
            "deleted": True, "id": done.tenant_id, "subdomain": done.subdomain,
            "files_deleted": done.files_deleted, "cache_keys_deleted": done.cache_keys_deleted,
        }  # fmt: skip
        self._emit(
            options, result,
            f"Deleted '{done.subdomain}': schema, {done.files_deleted} file(s), "
            f"{done.cache_keys_deleted} cache key(s) and its rows.",
        )  # fmt: skip

    def verb_export(self, options: dict[str, Any]) -> None:
        tenant = self._audited_lookup(options, "tenant.export")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        output = options["output"] or Path(f"{tenant.subdomain}-{stamp}.zip")
        done = tenant_export(tenant=tenant, actor=cli_actor(), output=output.resolve())
        result = {
            **tenant_summary(tenant), "path": str(done.path), "size_bytes": done.size_bytes,
            "models": done.models, "files": done.files, "seconds": round(done.seconds, 3),
        }  # fmt: skip
        self._emit(
            options, result,
            f"Exported '{tenant.subdomain}' to {done.path}: {sum(done.models.values())} "
            f"row(s) in {len(done.models)} model(s), {done.files} file(s), "
            f"{done.size_bytes:,} bytes.",
        )  # fmt: skip

    def verb_run(self, options: dict[str, Any]) -> None:
        rest = list(options["rest"])
        if "--" not in rest:
            raise CommandError("separate the command with --, e.g. tenants run acme -- check")
        targets, command = rest[: rest.index("--")], rest[rest.index("--") + 1 :]
        if not command:
            raise CommandError("name a command after --, e.g. tenants run acme -- check")
        if bool(targets) == options["all"] or len(targets) > 1:
            raise CommandError("name one tenant or give --all (not both)")
        options["subdomain"] = targets[0] if targets else ""
        name, *args = command
        if name not in get_commands():
            raise CommandError(f"unknown command {name!r}")
        if name == "tenants":
            raise CommandError("`tenants` cannot run inside a tenant")
        if options["all"]:
            tenants = list(Tenant.objects.filter(status__in=SERVED).order_by("subdomain"))
        else:
            tenant = self._audited_lookup(options, "tenant.run")
            if tenant.status not in SERVED:
                raise TenantStateError(f"'{tenant.subdomain}' is {tenant.status}; it has no schema")
            tenants = [tenant]
        failed = []
        for tenant in tenants:
            outcome = tenant_command_run(tenant=tenant, name=name, args=args)
            if outcome["status"] != "succeeded":
                failed.append(tenant.subdomain)
            if options["json"]:
                self.stdout.write(json.dumps({"event": "tenant", **outcome}))
            else:
                self.stdout.write(f"== {tenant.subdomain} ({outcome['status']})")
                text = (outcome["output"] + outcome["error"]).rstrip("\n")
                if text:
                    self.stdout.write(text)
        audit_record(
            actor=cli_actor(), action="tenant.run", outcome="failed" if failed else "succeeded",
            subdomain=tenants[0].subdomain if len(tenants) == 1 else "",
            command=[name, *args], tenants=len(tenants), failed=failed,
        )  # fmt: skip
        if options["json"]:
            self.stdout.write(
                json.dumps({"event": "summary", "tenants": len(tenants), "failed": failed})
            )
        if failed:
            raise CommandError(f"{name} failed in {len(failed)} tenant(s): {', '.join(failed)}")

    def verb_list(self, options: dict[str, Any]) -> None:
        tenants = [tenant_summary(tenant) for tenant in tenant_list(status=options["status"])]
        audit_record(
            actor=cli_actor(), action="tenants.list", outcome="succeeded",
            status_filter=options["status"] or "", count=len(tenants),
        )  # fmt: skip
        if options["json"]:
            self.stdout.write(json.dumps({"tenants": tenants, "count": len(tenants)}))
            return
        if not tenants:
            self.stdout.write("No tenants.")
            return
        rows = [("SUBDOMAIN", "STATUS", "HOST", "NAME")] + [
            (t["subdomain"], t["status"], t["host"] or "-", t["name"]) for t in tenants
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
                + "  "
                + row[3]
            )
        self.stdout.write(f"{len(tenants)} tenant(s)")

    def verb_migrate(self, options: dict[str, Any]) -> None:
        parallel = options["parallel"]
        if not 1 <= parallel <= MAX_PARALLEL:
            raise CommandError(f"--parallel must be between 1 and {MAX_PARALLEL}")
        subdomains = self._tenants_to_migrate(options["tenants"])
        report = MigrationReport(
            self.stdout, json_lines=options["json"] or not self.stdout.isatty()
        )
        with RunLock() as acquired:
            if not acquired:
                raise CommandError("another `tenants migrate` is running; wait for it to end")
            summary = run_migrate(
                report, subdomains=subdomains, parallel=parallel, dry_run=options["dry_run"],
                actor=cli_actor(),
            )  # fmt: skip
        if summary.failed:
            names = ", ".join(outcome.subdomain for outcome in summary.failed)
            raise CommandError(
                f"{len(summary.failed)} tenant(s) failed to migrate: {names}. "
                "The others are migrated; fix the cause and run `tenants migrate` again."
            )

    def _tenants_to_migrate(self, subdomains: list[str]) -> list[str]:
        """Refuse unknown or archived names up front, before anything runs."""
        wanted = sorted({subdomain.strip().lower() for subdomain in subdomains})
        found = dict(Tenant.objects.filter(subdomain__in=wanted).values_list("subdomain", "status"))
        unknown = [subdomain for subdomain in wanted if subdomain not in found]
        if unknown:
            audit_record(
                actor=cli_actor(), action="tenants.migrate", outcome="failed",
                error="tenant_not_found", detail=f"unknown: {', '.join(unknown)}",
            )  # fmt: skip
            raise CommandError(f"no tenant with subdomain {', '.join(map(repr, unknown))}")
        archived = [subdomain for subdomain in wanted if found[subdomain] == Tenant.Status.ARCHIVED]
        if archived:
            raise CommandError(
                f"{', '.join(map(repr, archived))} archived; `tenants restore` migrates it"
            )
        return wanted

    # -- helpers -------------------------------------------------------------------------

    def _owner_password(self, options: dict[str, Any]) -> tuple[str, bool]:
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin was given but standard input was empty")
            return password, False
        if sys.stdin.isatty() and not options["json"]:
            password = getpass.getpass("Owner password (empty to generate one): ")
            if password:
                if getpass.getpass("Repeat the password: ") != password:
                    raise CommandError("the two passwords differ")
                return password, False
        return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES), True

    def _emit(self, options: dict[str, Any], result: dict[str, Any], text: str) -> None:
        self.stdout.write(json.dumps(result) if options["json"] else text)
