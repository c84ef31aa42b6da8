"""`manage.py tenants <verb>`: the operators' tool for the tenant fleet.

Every verb prints text for people or, with --json, JSON for scripts: on every outcome, an
error included (`{"error": {"code": ..., "message": ...}}` on stdout, argparse's complaints
too). Bad input ends with a one-line error and a non-zero exit; nothing is half-done.
"""

from __future__ import annotations

import json
import os
import sys
from argparse import REMAINDER, ArgumentParser
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, OperationalError

from core.errors import AppError
from core.text import terminal_safe
from shared_apps.fleet.archive import tenant_archive
from shared_apps.fleet.creation import tenant_create
from shared_apps.fleet.delete import tenant_delete
from shared_apps.fleet.errors import (
    ArgumentsInvalidError,
    MigrationRunningError,
    TenantsQuarantinedError,
)
from shared_apps.fleet.export import tenant_export
from shared_apps.fleet.management.cli import (
    RunOutput,
    cli_actor,
    error_document,
    error_one_line,
    json_requested,
    owner_password_read,
    staff_password_read,
    tenant_summary,
)
from shared_apps.fleet.migrate.ledger import RunLock
from shared_apps.fleet.migrate.report import MigrationReport
from shared_apps.fleet.migrate.run import fleet_migrate
from shared_apps.fleet.migrate.waves import RolloutPolicy
from shared_apps.fleet.placement import (
    COORDINATOR_LOCAL,
    DEFAULT_MODE,
    DEFAULT_TOLERANCE,
    TRANSFER_MODES,
    fleet_placement,
    fleet_rebalance,
    tenant_move,
)
from shared_apps.fleet.provisioning import template_rebuild
from shared_apps.fleet.restore import tenant_restore
from shared_apps.fleet.run import fleet_command_run
from shared_apps.fleet.selectors import tenant_list_for_operator
from shared_apps.fleet.staff import staff_create
from shared_apps.fleet.verify import fleet_verify
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.selectors import tenant_find
from shared_apps.tenants.services import tenant_resume, tenant_suspend

MAX_PARALLEL = 64
# Verbs whose --json output is one JSON line per event; an error is their last line.
STREAMING_VERBS = ("migrate", "run")
# argparse's own exit status for a command line it cannot parse.
ARGUMENTS_EXIT = 2


class Command(BaseCommand):
    help = (
        "Manage tenants: create, list, migrate, suspend, resume, archive, restore, delete, "
        "export, run, template, verify, staff, placement, move, rebalance."
    )
    # Set from the command line before parsing: whether argparse's complaints print JSON.
    json_on_error = False

    def run_from_argv(self, argv: list[str]) -> None:
        self.json_on_error = json_requested(argv[2:])
        super().run_from_argv(argv)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        self._json_errors(parser)
        return parser

    def _json_errors(self, parser: ArgumentParser) -> None:
        """Make argparse's complaints a JSON error document when --json was asked for."""
        plain: Callable[[str], NoReturn] = parser.error

        def error(message: str) -> NoReturn:
            if not self.json_on_error:
                plain(message)
            self.stdout.write(json.dumps(error_document(ArgumentsInvalidError(message))))
            sys.exit(ARGUMENTS_EXIT)

        parser.error = error  # type: ignore[method-assign]

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
            "--parallel",
            type=int,
            default=os.cpu_count() or 1,
            metavar="N",
            help="worker processes (default: one per CPU)",
        )
        migrate.add_argument(
            "--tenant",
            dest="tenants",
            nargs="+",
            default=[],
            metavar="SUBDOMAIN",
            help="only these tenants",
        )
        migrate.add_argument(
            "--dry-run", action="store_true", help="list the pending migrations; change nothing"
        )
        migrate.add_argument(
            "--canary",
            type=int,
            default=0,
            metavar="N",
            help="migrate the N oldest pending tenants first, as a wave of their own",
        )
        migrate.add_argument(
            "--wave-size",
            type=int,
            default=0,
            metavar="M",
            help="then migrate the rest M tenants at a time (default: all in one wave)",
        )
        migrate.add_argument(
            "--max-failures",
            type=int,
            default=None,
            metavar="K",
            help="with --canary or --wave-size: start no further wave once more than K "
            "tenants failed (default 0)",
        )

        self._verb(
            verbs,
            "verify",
            "check every tenant's schema against the template; quarantine broken ones, "
            "release repaired ones (exit 1 while any is quarantined)",
        )

        archive = self._verb(
            verbs, "archive", "dump a tenant's schema to storage, then drop it", one=True
        )
        archive.add_argument(
            "--pg-dump",
            action="store_true",
            help="dump with pg_dump even when the schema matches its template (slower)",
        )
        self._verb(verbs, "restore", "bring an archived tenant back", one=True)
        delete = self._verb(
            verbs, "delete", "remove a tenant for good: schema, files, cache, rows", one=True
        )
        delete.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
        delete.add_argument(
            "--force", action="store_true", help="also delete a tenant that is not archived"
        )
        export = self._verb(
            verbs,
            "export",
            "write a portable zip of a tenant's data (JSON per model, files)",
            one=True,
        )
        export.add_argument(
            "--output",
            type=Path,
            metavar="PATH",
            help="where to write the zip (default: EXPORT_DIR/<subdomain>-<time>.zip, "
            "EXPORT_DIR being .devdata/exports/ unless configured)",
        )

        placement = self._verb(
            verbs,
            "placement",
            "Citus mode: the node and size of each tenant, and each node's share",
        )
        placement.add_argument(
            "subdomains", nargs="*", metavar="SUBDOMAIN", help="only these tenants"
        )
        move = self._verb(
            verbs, "move", "Citus mode: move a tenant's schema to another worker", one=True
        )
        move.add_argument(
            "--node", required=True, metavar="HOST:PORT", help="the worker to move to"
        )
        self._add_mode(move)
        rebalance = self._verb(
            verbs, "rebalance", "Citus mode: move tenants until the workers hold even bytes"
        )
        rebalance.add_argument(
            "--dry-run", action="store_true", help="print the plan; move nothing"
        )
        rebalance.add_argument(
            "--tolerance",
            type=float,
            default=DEFAULT_TOLERANCE * 100,
            metavar="PERCENT",
            help="stop once the fullest worker holds at most this share of the average "
            f"worker's bytes more than the emptiest (default {DEFAULT_TOLERANCE:.0%})",
        )
        self._add_mode(rebalance)

        run = self._verb(
            verbs, "run", "run a manage.py command inside tenants: run [--all] [SUB] -- CMD ..."
        )
        run.add_argument("--all", action="store_true", help="every active and suspended tenant")
        run.add_argument("rest", nargs=REMAINDER, metavar="[SUBDOMAIN] -- COMMAND [ARGS ...]")

        listing = self._verb(verbs, "list", "list tenants")
        listing.add_argument("--status", choices=[choice.value for choice in Tenant.Status])

        staff = verbs.add_parser("staff", help="platform operators: staff create --email ...")
        self._json_errors(staff)
        staff_verbs = staff.add_subparsers(dest="staff_verb", required=True, metavar="ACTION")
        staff_new = staff_verbs.add_parser(
            "create",
            help="create a platform operator (superuser; enrols a second factor at first "
            "sign-in to the platform admin)",
        )
        self._json_errors(staff_new)
        staff_new.add_argument("--email", required=True)
        staff_new.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )
        self._add_json(staff_new)

    def _verb(
        self, verbs: Any, name: str, description: str, *, one: bool = False
    ) -> ArgumentParser:
        """Add a verb with --json; `one`: it acts on the tenant named by a SUBDOMAIN."""
        parser: ArgumentParser = verbs.add_parser(name, help=description)
        self._json_errors(parser)
        if one:
            parser.add_argument("subdomain")
        self._add_json(parser)
        return parser

    @staticmethod
    def _add_json(parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")

    @staticmethod
    def _add_mode(parser: ArgumentParser) -> None:
        parser.add_argument(
            "--mode",
            choices=list(TRANSFER_MODES),
            default=DEFAULT_MODE,
            help="block_writes (default): the tenant's writes wait during the copy; logical: "
            "they wait only at the switch, every table needs a primary key; force_logical: "
            "without one, such tables' updates and deletes fail during the move",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"verb_{options['verb']}")(options)
        except AppError as error:
            self._fail(options, error, terminal_safe(error.detail))
        except CommandError as error:
            if getattr(error, "reported", False):
                raise  # its JSON (the verb's own document) is out already
            self._fail(options, error, str(error))
        except OperationalError as error:
            if options.get("json"):
                self._json_error(options, error_document(error, code="database_unavailable"))
            raise  # manage.py turns an unreachable database into its own one line
        except (DatabaseError, psycopg.Error, OSError, RuntimeError) as error:
            message = f"{options['verb']} failed: {error_one_line(error)}"
            self._fail(options, error, terminal_safe(message), code="operation_failed")

    def _fail(
        self, options: dict[str, Any], error: Exception, message: str, *, code: str = ""
    ) -> NoReturn:
        """End with one line on stderr (and, with --json, the error document on stdout)."""
        if options.get("json"):
            self._json_error(options, error_document(error, code=code, message=message))
        raise CommandError(message) from None

    def _json_error(self, options: dict[str, Any], document: dict[str, Any]) -> None:
        if options["verb"] in STREAMING_VERBS:
            document = {"event": "error", **document}  # one more line of their stream
        self.stdout.write(json.dumps(document))

    # -- verbs ---------------------------------------------------------------------------

    def verb_create(self, options: dict[str, Any]) -> None:
        if options["if_missing"]:
            existing = tenant_find(subdomain=options["subdomain"])
            if existing is not None:
                self._emit(
                    options,
                    {"created": False, **tenant_summary(existing)},
                    f"Tenant '{existing.subdomain}' already exists.",
                )
                return
        password, generated = owner_password_read(
            from_stdin=options["password_stdin"], may_prompt=not options["json"]
        )
        created = tenant_create(
            name=options["name"],
            subdomain=options["subdomain"],
            owner_email=options["owner_email"],
            owner_password=password,
            actor=cli_actor(),
        )
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
        done = template_rebuild(actor=cli_actor())
        template, pooled = done.template, done.pool_schemas_made
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
        tenant = tenant_suspend(
            subdomain=options["subdomain"], reason=options["reason"], actor=cli_actor()
        )
        self._emit(options, tenant_summary(tenant), f"Suspended '{tenant.subdomain}'.")

    def verb_resume(self, options: dict[str, Any]) -> None:
        tenant = tenant_resume(subdomain=options["subdomain"], actor=cli_actor())
        self._emit(options, tenant_summary(tenant), f"Resumed '{tenant.subdomain}'.")

    def verb_archive(self, options: dict[str, Any]) -> None:
        done = tenant_archive(
            subdomain=options["subdomain"], actor=cli_actor(), pg_dump=options["pg_dump"]
        )
        result = {
            **tenant_summary(done.tenant),
            "archive": done.archive.storage_name,
            "format": done.archive.format,
            "pg_dump_reason": done.pg_dump_reason,
            "size_bytes": done.archive.size_bytes,
            "sha256": done.archive.sha256,
            "seconds": round(done.seconds, 3),
        }
        how = (
            f"with pg_dump ({done.pg_dump_reason})" if done.pg_dump_reason else "from its template"
        )
        self._emit(
            options,
            result,
            f"Archived '{done.tenant.subdomain}' {how} in {done.seconds:.2f}s: "
            f"{done.archive.size_bytes:,} bytes in {done.archive.storage_name} (under the "
            "tenant's storage prefix); schema dropped.",
        )

    def verb_restore(self, options: dict[str, Any]) -> None:
        done = tenant_restore(subdomain=options["subdomain"], actor=cli_actor())
        source = done.archive.storage_name if done.archive is not None else "its schema"
        result = {
            **tenant_summary(done.tenant),
            "archive": source,
            "format": done.archive.format if done.archive is not None else "",
            "migrations_applied": done.migrations,
            "seconds": round(done.seconds, 3),
        }
        migrated = f"; applied {', '.join(done.migrations)}" if done.migrations else ""
        self._emit(
            options,
            result,
            f"Restored '{done.tenant.subdomain}' from {source}{migrated}; "
            f"it is {done.tenant.status}.",
        )

    def verb_delete(self, options: dict[str, Any]) -> None:
        done = tenant_delete(
            subdomain=options["subdomain"],
            actor=cli_actor(),
            force=options["force"],
            confirmed=options["yes"],
        )
        result = {
            "deleted": True,
            "id": done.tenant_id,
            "subdomain": done.subdomain,
            "files_deleted": done.files_deleted,
            "cache_keys_deleted": done.cache_keys_deleted,
        }
        self._emit(
            options,
            result,
            f"Deleted '{done.subdomain}': schema, {done.files_deleted} file(s), "
            f"{done.cache_keys_deleted} cache key(s) and its rows.",
        )

    def verb_export(self, options: dict[str, Any]) -> None:
        done = tenant_export(
            subdomain=options["subdomain"], actor=cli_actor(), output=options["output"]
        )
        result = {
            **tenant_summary(done.tenant),
            "path": str(done.path),
            "size_bytes": done.size_bytes,
            "models": done.models,
            "files": done.files,
            "seconds": round(done.seconds, 3),
        }
        self._emit(
            options,
            result,
            f"Exported '{done.tenant.subdomain}' to {done.path}: {sum(done.models.values())} "
            f"row(s) in {len(done.models)} model(s), {done.files} file(s), "
            f"{done.size_bytes:,} bytes.",
        )

    def verb_run(self, options: dict[str, Any]) -> None:
        rest = list(options["rest"])
        split = rest.index("--") if "--" in rest else len(rest)
        targets, command = rest[:split], rest[split + 1 :]
        if "--json" in targets:  # `run acme --json -- ...`: argparse saw a subdomain first
            targets.remove("--json")
            options["json"] = True
        if split == len(rest):
            raise ArgumentsInvalidError(
                "separate the command with --, e.g. tenants run acme -- check"
            )
        if not command:
            raise ArgumentsInvalidError("name a command after --, e.g. tenants run acme -- check")
        if bool(targets) == options["all"] or len(targets) > 1:
            raise ArgumentsInvalidError("name one tenant or give --all (not both)")
        name, *args = command
        fleet_command_run(
            RunOutput(self.stdout, json_lines=options["json"]),
            name=name,
            args=args,
            actor=cli_actor(),
            subdomain=targets[0] if targets else "",
        )

    def verb_list(self, options: dict[str, Any]) -> None:
        tenants = [
            tenant_summary(tenant)
            for tenant in tenant_list_for_operator(actor=cli_actor(), status=options["status"])
        ]
        if options["json"]:
            self.stdout.write(json.dumps({"tenants": tenants, "count": len(tenants)}))
            return
        if not tenants:
            self.stdout.write("No tenants.")
            return
        rows = [("SUBDOMAIN", "STATUS", "HOST", "NAME")] + [
            tuple(
                terminal_safe(cell, keep_line_breaks=False)
                for cell in (t["subdomain"], t["status"], t["host"] or "-", t["name"])
            )
            for t in tenants
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
            raise ArgumentsInvalidError(f"--parallel must be between 1 and {MAX_PARALLEL}")
        policy = self._rollout_policy(options)
        report = MigrationReport(
            self.stdout, json_lines=options["json"] or not self.stdout.isatty()
        )
        with RunLock() as acquired:
            if not acquired:
                raise MigrationRunningError(
                    "another `tenants migrate` is running; wait for it to end"
                )
            fleet_migrate(
                report,
                subdomains=options["tenants"],
                parallel=parallel,
                dry_run=options["dry_run"],
                actor=cli_actor(),
                policy=policy,
            )

    @staticmethod
    def _rollout_policy(options: dict[str, Any]) -> RolloutPolicy:
        canary, wave_size, max_failures = (
            options["canary"],
            options["wave_size"],
            options["max_failures"],
        )
        for name, value in (("--canary", canary), ("--wave-size", wave_size)):
            if value < 0:
                raise ArgumentsInvalidError(f"{name} must be 0 or more")
        if max_failures is not None and max_failures < 0:
            raise ArgumentsInvalidError("--max-failures must be 0 or more")
        if max_failures is not None and not (canary or wave_size):
            raise ArgumentsInvalidError(
                "--max-failures needs --canary or --wave-size (it is checked between waves)"
            )
        return RolloutPolicy(canary=canary, wave_size=wave_size, max_failures=max_failures or 0)

    def verb_verify(self, options: dict[str, Any]) -> None:
        progress = None if options["json"] else self._verify_progress
        done = fleet_verify(actor=cli_actor(), progress=progress)
        quarantined = None
        if done.still_quarantined:
            names = ", ".join(done.still_quarantined)
            quarantined = TenantsQuarantinedError(
                f"{len(done.still_quarantined)} tenant(s) quarantined: {names}"
            )
        if options["json"]:
            # One document: the report, with the error beside it while any is quarantined.
            report = done.as_dict()
            if quarantined is not None:
                report.update(error_document(quarantined))
            self.stdout.write(json.dumps(report))
            if quarantined is not None:
                reported = CommandError(terminal_safe(quarantined.detail))
                reported.reported = True  # type: ignore[attr-defined]
                raise reported
            return
        for tenant in done.findings:
            state = "QUARANTINED" if tenant.subdomain in done.still_quarantined else "DRIFT"
            detail = tenant.reason() or (
                "; ".join(tenant.drift.lines(limit=5))
                if tenant.has_drifted
                else "not at the template's migrations yet"
            )
            self.stdout.write(terminal_safe(f"{state} {tenant.subdomain}: {detail}"))
        for subdomain in done.released:
            self.stdout.write(terminal_safe(f"released {subdomain}: its schema is whole"))
        checked = sum(tenant.checked for tenant in done.tenants)
        self.stdout.write(
            f"{checked} tenant(s) checked, {len(done.unchecked)} not at the template's "
            f"migrations (not checked), {len(done.drifted)} drifted, "
            f"{len(done.still_quarantined)} quarantined, {len(done.released)} released"
        )
        if quarantined is not None:
            raise quarantined

    def verb_placement(self, options: dict[str, Any]) -> None:
        placement = fleet_placement(actor=cli_actor(), subdomains=options["subdomains"])
        if options["json"]:
            self.stdout.write(json.dumps(placement.as_dict()))
            return
        rows = [("SUBDOMAIN", "SCHEMA", "NODE", "BYTES", "STATUS")] + [
            (
                t.tenant.subdomain,
                t.tenant.schema_name,
                t.where or "-",
                f"{t.size_bytes:,}",
                t.tenant.status,
            )
            for t in placement.tenants
        ]
        self._table(rows, numeric=(3,))
        self.stdout.write("")
        self._table(
            [("NODE", "TENANTS", "BYTES")]
            + [(n.node, f"{n.tenants:,}", f"{n.size_bytes:,}") for n in placement.nodes],
            numeric=(1, 2),
        )
        workers = sum(1 for n in placement.nodes if n.node != COORDINATOR_LOCAL)
        self.stdout.write(f"{len(placement.tenants)} tenant(s); {workers} worker(s)")

    def verb_move(self, options: dict[str, Any]) -> None:
        done = tenant_move(
            actor=cli_actor(),
            subdomain=options["subdomain"],
            node=options["node"],
            mode=options["mode"],
            progress=None if options["json"] else self._move_progress,
        )
        if options["json"]:
            self.stdout.write(json.dumps({**tenant_summary(done.tenant), "move": done.as_dict()}))

    def verb_rebalance(self, options: dict[str, Any]) -> None:
        done = fleet_rebalance(
            actor=cli_actor(),
            dry_run=options["dry_run"],
            tolerance=options["tolerance"] / 100,
            mode=options["mode"],
            progress=None if options["json"] else self._move_progress,
        )
        if options["json"]:
            self.stdout.write(json.dumps(done.as_dict()))
            return
        if done.dry_run and done.plan:
            self.stdout.write("Dry run: nothing moved.")
        elif done.plan:
            self.stdout.write(f"Rebalanced: {len(done.moves)} move(s).")

    def _move_progress(self, phase: str, detail: dict[str, Any]) -> None:
        if phase == "plan":
            if not detail["moves"]:
                self.stdout.write("The workers are even: nothing to move.")
            else:
                self.stdout.write(f"Plan: {detail['moves']} move(s).")
            self._table(
                [("NODE", "BYTES NOW", "BYTES AFTER")]
                + [
                    (str(node), f"{size:,}", f"{detail['after'][node]:,}")
                    for node, size in detail["before"].items()
                ],
                numeric=(1, 2),
            )
            for step in detail["plan"]:
                self.stdout.write(
                    terminal_safe(
                        f"  {step.placement.tenant.subdomain}: {step.source} -> {step.target} "
                        f"({step.placement.size_bytes:,} bytes)"
                    )
                )
        elif phase == "moving":
            pause = (
                "its writes wait until the copy ends"
                if detail["mode"] == "block_writes"
                else "its writes wait only at the switch"
            )
            self.stdout.write(
                terminal_safe(
                    f"moving '{detail['subdomain']}' ({detail['schema']}, "
                    f"{detail['size_bytes']:,} bytes) from {detail['from']} to {detail['to']} "
                    f"with {detail['mode']}: {pause}"
                )
            )
        elif phase == "moved":
            self.stdout.write(
                terminal_safe(
                    f"moved '{detail['subdomain']}' to {detail['to']} in {detail['seconds']:.2f}s "
                    f"({detail['size_bytes']:,} bytes)"
                )
            )

    def verb_staff(self, options: dict[str, Any]) -> None:
        password = staff_password_read(
            from_stdin=options["password_stdin"], may_prompt=not options["json"]
        )
        user = staff_create(email=options["email"], password=password, actor=cli_actor())
        result = {
            "created": True,
            "email": user.email,
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
            "second_factor": "enrol at first sign-in",
        }
        self._emit(
            options,
            result,
            f"Created platform operator {user.email}. At first sign-in to the platform admin "
            "they enrol a second factor (an authenticator app).",
        )

    def _verify_progress(self, phase: str, detail: dict[str, Any]) -> None:
        if phase == "read":
            self.stdout.write(
                f"read the catalog of {detail['schemas']:,} tenant(s) in {detail['seconds']:.2f}s"
            )
        elif phase == "compared":
            self.stdout.write(
                f"compared {detail['tenants']:,} tenant(s) with the template in "
                f"{detail['seconds']:.2f}s"
            )

    # -- helpers -------------------------------------------------------------------------

    def _table(self, rows: Sequence[tuple[str, ...]], *, numeric: tuple[int, ...] = ()) -> None:
        """Print rows in aligned columns (`numeric`: the columns aligned right)."""
        safe = [tuple(terminal_safe(cell, keep_line_breaks=False) for cell in row) for row in rows]
        widths = [max(len(row[i]) for row in safe) for i in range(len(safe[0]))]
        for row in safe:
            cells = [
                cell.rjust(width) if i in numeric else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            self.stdout.write("  ".join(cells).rstrip())

    def _emit(self, options: dict[str, Any], result: dict[str, Any], text: str) -> None:
        # JSON escapes control characters itself; text from names must not drive the terminal.
        self.stdout.write(json.dumps(result) if options["json"] else terminal_safe(text))
