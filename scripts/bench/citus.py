"""Signup and provisioning on a Citus cluster against one server, and a tenant's move.

Run with `make bench-citus CITUS_URL=postgresql://…/db`: CITUS_URL names a database on a
Citus coordinator (it must exist on every node, with the citus extension). The single server
is the embedded dev PostgreSQL, as for the other benchmarks. In the same run:

- the provisioning step and signup-to-ready, with scripts/bench/provisioning.py's own code
  pointed at each database in turn: the step claiming a pooled schema, the step replaying
  the template (on Citus: the schema built local, then distributed to a worker), and
  `POST /api/v1/signup` until the new workspace serves its signed-in home page, one
  gunicorn worker; BENCH_SIGNUPS (15) of each;
- a tenant with BENCH_MOVE_ROWS (10,000) tasks moved between the two workers with
  `tenants move`, BENCH_MOVES (3) times in each mode (block_writes, logical): the move's
  duration, and its write pause: while it runs, a writer on a connection of its own
  inserts a task every 5 ms, and the pause is the longest gap between two successful
  inserts.

The cluster's database is used as it is (public schema migrated, template rebuilt); the
tenants and pooled schemas the run makes there are removed at its end. Writes its section
of docs/benchmarks.md.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provisioning
import routing as routing_bench

ROOT = routing_bench.ROOT
SINGLE_DB = "bench_citus"
SIGNUPS = int(os.environ.get("BENCH_SIGNUPS", "15"))
MOVE_ROWS = int(os.environ.get("BENCH_MOVE_ROWS", "10000"))
MOVES = int(os.environ.get("BENCH_MOVES", "3"))
WRITE_EVERY = 0.005
MOVE_MODES = ("block_writes", "logical")
say = routing_bench.say

# Which database the borrowed helpers talk to: "single" or "citus".
state: dict[str, str] = {"target": "single"}


def citus_url() -> str:
    url = os.environ.get("CITUS_URL", "")
    if not url:
        raise SystemExit(
            "bench-citus: set CITUS_URL to a database on a Citus coordinator, e.g. "
            "CITUS_URL=postgresql://postgres@127.0.0.1:9700/platform make bench-citus"
        )
    return url


def single_url() -> str:
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{SINGLE_DB}").geturl()


def env(mode: str = "platform", **extra: str) -> dict[str, str]:
    base = routing_bench.bench_env(mode)
    base["DATABASE_URL"] = citus_url() if state["target"] == "citus" else single_url()
    return {**base, **extra}


# provisioning.py's helpers, pointed at the database of the moment and this run's count.
provisioning.env = env
provisioning.SIGNUPS = SIGNUPS


def run(code: str, **extra: str) -> str:
    return routing_bench.python_run(code, env(**extra))


def manage(*args: str, **extra: str) -> str:
    return routing_bench.manage(*args, env=env(**extra))


def server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('server_version')").fetchone()
        citus = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'citus'"
        ).fetchone()
    assert row is not None
    return f"PostgreSQL {row[0].split()[0]}" + (f", Citus {citus[0]}" if citus else "")


# -- preparing each database ----------------------------------------------------------------

PURGE = """
import json, os, django
django.setup()
from django.db import transaction
from shared_apps.tenants.models import PooledSchema, Tenant
from tenancy import public_context, schemas
prefixes = json.loads(os.environ["PREFIXES"])
removed = 0
with public_context():
    for tenant in Tenant.objects.all():
        if tenant.subdomain.startswith(tuple(prefixes)):
            with transaction.atomic():
                schemas.schema_drop(tenant.schema_name)
                tenant.delete()
            removed += 1
    if os.environ.get("POOL") == "1":
        for row in PooledSchema.objects.all():
            with transaction.atomic():
                schemas.schema_drop(schemas.schema_name_for(row.id))
                row.delete()
            removed += 1
print(removed)
"""


def prefixes(tag: str) -> list[str]:
    """The subdomains this run makes (provisioning.py's and the move's)."""
    return [
        f"step-pool-{tag}-",
        f"step-template-{tag}-",
        f"s-citus-{tag}-",
        f"warm-citus-{tag}",
        f"move-{tag}",
    ]


def prepare(target: str) -> None:
    state["target"] = target
    if target == "single":
        import psycopg

        admin = urlsplit(single_url())._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{SINGLE_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{SINGLE_DB}"')
    else:
        # what an earlier run that stopped half-way left: its pooled schemas
        run(PURGE, PREFIXES=json.dumps([]), POOL="1")
    say(f"{target}: migrating the public schema and rebuilding the template")
    manage("migrate_schemas", "--shared", "--verbosity", "0")
    manage("tenants", "template")


def provisioning_figures(target: str, tag: str) -> dict[str, list[float]]:
    state["target"] = target
    say(f"{target}: provisioning step (pool, then template), {SIGNUPS} each")
    pool = provisioning.provisioning_step("pool", tag, {})
    replay = provisioning.provisioning_step("template", tag, {})
    say(f"{target}: signup-to-ready over HTTP, {SIGNUPS} signups")
    ready = provisioning.signups("config.wsgi", target, tag)
    return {"pool": pool, "template": replay, "ready": ready}


# -- a move and its write pause --------------------------------------------------------------

MOVE_TENANT = """
import json, os, django
django.setup()
from django.db import connection
from shared_apps.fleet.creation import tenant_create
from tenant_apps.projects.models import Project
from tenancy import tenant_context
tenant = tenant_create(name="Moving", subdomain=os.environ["SUBDOMAIN"],
                       owner_email="owner@move.test", owner_password="bench-password-123").tenant
with tenant_context(tenant):
    project = Project.objects.create(name="Moving day")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO projects_task (project_id, title, status, created_at, updated_at) "
            "SELECT %s, 'task ' || n, 'todo', now(), now() FROM generate_series(1, %s) n",
            [project.pk, int(os.environ["ROWS"])],
        )
print(json.dumps({"schema": tenant.schema_name, "project": project.pk}))
"""


class Writer(threading.Thread):
    """Insert a task every WRITE_EVERY seconds on a connection of its own; keep the time of
    each insert that succeeded, and count those that failed."""

    def __init__(self, url: str, schema: str, project: int) -> None:
        super().__init__(daemon=True)
        self.url, self.schema, self.project = url, schema, project
        self.done: list[float] = []
        self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        statement = (
            f'INSERT INTO "{self.schema}".projects_task '
            "(project_id, title, status, created_at, updated_at) "
            "VALUES (%s, 'written during the move', 'todo', now(), now())"
        )
        conn = psycopg.connect(self.url, autocommit=True)
        try:
            while not self.stopping.is_set():
                try:
                    conn.execute(statement, [self.project])
                    self.done.append(time.monotonic())
                except psycopg.Error:
                    self.failed += 1
                    if conn.closed:
                        conn = psycopg.connect(self.url, autocommit=True)
                time.sleep(WRITE_EVERY)
        finally:
            conn.close()

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time between two successful inserts, from the last one before
        `start` to the first one after `end`."""
        before = [t for t in self.done if t <= start][-1:]
        during = [t for t in self.done if start < t <= end]
        after = [t for t in self.done if t > end][:1]
        times = before + during + after
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def move_figures(tag: str) -> dict[str, Any]:
    state["target"] = "citus"
    subdomain = f"move-{tag}"
    say(f"citus: a tenant with {MOVE_ROWS:,} tasks, moved {MOVES} times per mode")
    made = json.loads(
        run(MOVE_TENANT, SUBDOMAIN=subdomain, ROWS=str(MOVE_ROWS), BENCH_FAST_HASH="1")
    )
    placement = json.loads(manage("tenants", "placement", subdomain, "--json"))
    # every node of the summary but the coordinator's local schemas
    workers = [row["node"] for row in placement["nodes"] if row["node"] != "coordinator (local)"]
    node = placement["tenants"][0]["node"]
    figures: dict[str, Any] = {"size_bytes": placement["tenants"][0]["size_bytes"], "modes": {}}
    for mode in MOVE_MODES:
        moves: list[dict[str, float]] = []
        for _ in range(MOVES):
            target = next(worker for worker in workers if worker != node)
            writer = Writer(citus_url(), made["schema"], made["project"])
            writer.start()
            time.sleep(1)  # the writer's steady pace, before the move
            started = time.monotonic()
            moved = json.loads(
                manage("tenants", "move", subdomain, "--node", target, "--mode", mode, "--json")
            )["move"]
            ended = time.monotonic()
            time.sleep(1)
            writer.stopping.set()
            writer.join()
            steady = [b - a for a, b in itertools.pairwise(writer.done) if b <= started]
            moves.append(
                {
                    "seconds": moved["seconds"],
                    "pause": writer.longest_gap(started, ended),
                    "steady": statistics.median(steady) if steady else 0.0,
                    "failed": writer.failed,
                    "writes": sum(1 for t in writer.done if started < t <= ended),
                }
            )
            node = target
            say(
                f"citus: {mode} move {moved['seconds']:.2f}s, write pause "
                f"{moves[-1]['pause'] * 1000:.0f} ms, {writer.failed} failed write(s)"
            )
        figures["modes"][mode] = moves
    return figures


# -- the report -------------------------------------------------------------------------------


def p(values: list[float], q: float) -> float:
    return provisioning.p(values, q)


def write(
    versions: dict[str, str],
    single: dict[str, list[float]],
    citus: dict[str, list[float]],
    moves: dict[str, Any],
) -> None:
    labels = {
        "pool": "provisioning step (pooled schema claimed)",
        "template": "provisioning step (template replayed; on Citus, then distributed)",
        "ready": "signup-to-ready",
    }
    rows = "\n".join(
        f"| {labels[key]} | {p(single[key], 0.5):.1f} / {p(single[key], 0.95):.1f} "
        f"| {p(citus[key], 0.5):.1f} / {p(citus[key], 0.95):.1f} "
        f"| {statistics.median(citus[key]) / statistics.median(single[key]):.1f}x |"
        for key in labels
    )
    move_rows = []
    for mode, made in moves["modes"].items():
        seconds = [move["seconds"] for move in made]
        pauses = [move["pause"] * 1000 for move in made]
        move_rows.append(
            f"| `{mode}` | {len(made)} | {statistics.median(seconds):.2f} "
            f"({min(seconds):.2f} to {max(seconds):.2f}) | {statistics.median(pauses):.0f} "
            f"({min(pauses):.0f} to {max(pauses):.0f}) "
            f"| {sum(move['writes'] for move in made)} | {sum(move['failed'] for move in made)} |"
        )
    steady = statistics.median(
        move["steady"] * 1000 for made in moves["modes"].values() for move in made
    )
    section = f"""## Citus cluster (`make bench-citus`)

Measured {time.strftime("%Y-%m-%d")} on {routing_bench.machine()}. Single server: the
embedded {versions["single"]}. Cluster: {versions["citus"]}, a coordinator and two workers
on this same machine, so every query of a tenant crosses from the coordinator to a worker
over loopback and the three servers share two cores: it shows what the cluster costs a
request, not what more machines would give. Neither database held other tenants.

Method: scripts/bench/provisioning.py's own steps, pointed at each database in turn, in
the same run. *Provisioning step*: in process, the time to give a new tenant a schema at
the current migrations: claiming one made ahead of time (the pool, filled beforehand as
the worker keeps it; on Citus its schemas are distributed when made) or, pool empty,
replaying the template's SQL (on Citus the schema is built local and then distributed to a
worker in the same transaction). *Signup-to-ready*: `POST /api/v1/signup` until the new
workspace answers its signed-in home page, one gunicorn worker, Argon2, the pool filled.
{SIGNUPS} of each, per database.

| measure | single server p50 / p95 (ms) | Citus p50 / p95 (ms) | Citus ÷ single (p50) |
|---|---:|---:|---:|
{rows}

*Moves*: a tenant with {MOVE_ROWS:,} tasks (its schema {moves["size_bytes"]:,} bytes on the
worker) moved with `tenants move` between the two workers, {MOVES} times per mode. While
each move runs, a writer on a connection of its own inserts a task every
{WRITE_EVERY * 1000:.0f} ms (one every {steady:.0f} ms in practice, outside moves); the
*write pause* is the longest gap between two of its successful inserts around the move;
*writes* counts its inserts that succeeded while the `tenants move` commands ran (their
start-up included), *failed* those refused.
Move time is `citus_schema_move`'s, as `tenants move` reports it.

| mode | moves | move s: median (range) | write pause ms: median (range) | writes | failed |
|---|---:|---:|---:|---:|---:|
{chr(10).join(move_rows)}

With `block_writes` the tenant's writes wait for the whole copy, so the pause is about the
move; a logical move copies while writes go on and holds them only for the switch.
"""
    routing_bench.write_report(section, "citus")
    say("wrote docs/benchmarks.md")
    print(section)


def main() -> None:
    citus_url()
    tag = format(int(time.time()) % 10**7, "x")  # this run's subdomains
    versions = {
        "single": server_version(urlsplit(single_url())._replace(path="/postgres").geturl()),
        "citus": server_version(citus_url()),
    }
    try:
        results = {}
        for target in ("single", "citus"):
            prepare(target)
            results[target] = provisioning_figures(target, tag)
        moves = move_figures(tag)
    finally:
        state["target"] = "citus"
        say("citus: removing this run's tenants and pooled schemas")
        run(PURGE, PREFIXES=json.dumps(prefixes(tag)), POOL="1")
    write(versions, results["single"], results["citus"], moves)


if __name__ == "__main__":
    main()
