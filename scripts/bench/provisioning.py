"""Signup-to-ready time and provisioning time: template cloning against stock django-tenants.

Run with `make bench-provisioning`. In one fresh database with BENCH_TENANTS (1,000)
tenants already present, for each of two phases (the project's migrations, then 20 extra
trivial migrations in a tenant app):

- provisioning step: the time to create one tenant schema at the current migration state,
  in process, ours (template replay) and stock (django-tenants' `create_schema`:
  CREATE SCHEMA + migrate_schemas), BENCH_SIGNUPS (30) each;
- signup-to-ready: from sending `POST /api/v1/signup` until the new tenant serves its
  signed-in home page (hand-off link followed), against one gunicorn worker, ours and stock.

Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import routing as routing_bench

ROOT = routing_bench.ROOT
PYTHON = sys.executable
DB_NAME = "bench_provisioning"
TENANTS = int(os.environ.get("BENCH_TENANTS", "1000"))
SIGNUPS = int(os.environ.get("BENCH_SIGNUPS", "30"))
EXTRA_APP = Path(tempfile.mkdtemp(prefix="bench-extra-"))
say = routing_bench.say


def env(**extra: str) -> dict[str, str]:
    base = routing_bench.bench_env()
    base["DATABASE_URL"] = urlsplit(base["DATABASE_URL"])._replace(path=f"/{DB_NAME}").geturl()
    base["PYTHONPATH"] = os.pathsep.join([str(EXTRA_APP), base["PYTHONPATH"]])
    return {**base, **extra}


def write_extra_app() -> None:
    """A tenant app whose 20 migrations each add one column: the 'extra migrations' phase."""
    app = EXTRA_APP / "benchextra"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    fields = "\n".join(f"    field_{n} = models.IntegerField(default=0)" for n in range(2, 21))
    (app / "models.py").write_text(
        f"from django.db import models\n\n\nclass Note(models.Model):\n"
        f"    text = models.TextField(default='')\n{fields}\n"
    )
    (app / "migrations" / "0001_initial.py").write_text(
        "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n"
        "    initial = True\n    dependencies = []\n    operations = [migrations.CreateModel("
        "name='Note', fields=[('id', models.BigAutoField(primary_key=True, serialize=False)),"
        " ('text', models.TextField(default=''))])]\n"
    )
    for n in range(2, 21):
        previous = f"{n - 1:04d}_" + ("initial" if n == 2 else f"field_{n - 1}")
        (app / "migrations" / f"{n:04d}_field_{n}.py").write_text(
            "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n"
            f"    dependencies = [('benchextra', '{previous}')]\n"
            f"    operations = [migrations.AddField(model_name='note', name='field_{n}',"
            " field=models.IntegerField(default=0))]\n"
        )


def run(code: str, **extra: str) -> str:
    return routing_bench.python_run(code, env(**extra))


def manage(*args: str, **extra: str) -> None:
    routing_bench.manage(*args, env=env(**extra))


def prepare() -> None:
    import psycopg

    admin = urlsplit(env()["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    manage("migrate_schemas", "--verbosity", "0")
    manage("tenants", "template")
    say(f"filling the catalog with {TENANTS} tenants")
    run(FILL, BENCH_FAST_HASH="1", BENCH_TENANTS=str(TENANTS))


FILL = """
import os, django
django.setup()
from shared_apps.fleet.creation import tenant_create
for n in range(int(os.environ["BENCH_TENANTS"])):
    tenant_create(name=f"Filler {n}", subdomain=f"filler{n}", owner_email=f"o@f{n}.test",
                  owner_password="filler-password-123")
"""

POOL_FILL = """
import os, django
django.setup()
from shared_apps.fleet.provisioning import pool_fill
pool_fill(size=int(os.environ["POOL_SIZE"]))
"""

STEP = """
import json, os, time, uuid, django
django.setup()
from django.db import transaction
from shared_apps.tenants.models import Tenant
from shared_apps.fleet.provisioning import TEMPLATE, pool_claim, pool_fill, schema_provision
from tenancy import TenantRef, public_context, schemas
mode, count = os.environ["STEP_MODE"], int(os.environ["STEP_COUNT"])
if mode == "pool":
    pool_fill(size=count)  # what the worker keeps ready; not measured
timings = []
for n in range(count):
    tenant_id = uuid.uuid4()
    subdomain = f"step-{mode}-{os.environ['PHASE']}-{n}"
    if mode == "stock":
        tenant = Tenant(id=tenant_id, name="step", subdomain=subdomain,
                        schema_name=schemas.schema_name_for(tenant_id), status="active")
        with public_context():
            tenant.save()
        started = time.perf_counter()
        tenant.create_schema(check_if_exists=False, verbosity=0)  # django-tenants, as on save
        timings.append(time.perf_counter() - started)
        continue
    with public_context(), transaction.atomic():
        started = time.perf_counter()
        pooled_id = pool_claim() if mode == "pool" else None
        claimed = time.perf_counter()
        tenant_id = pooled_id or tenant_id
        tenant = Tenant.objects.create(
            id=tenant_id, name="step", subdomain=subdomain,
            schema_name=schemas.schema_name_for(tenant_id), status="active",
        )
        replay_started = time.perf_counter()
        schema_provision(tenant=TenantRef.of(tenant), pooled=pooled_id is not None)
        # the step: taking a pooled schema, or replaying the template; not the tenant row
        timings.append((claimed - started) + (time.perf_counter() - replay_started))
print(json.dumps(timings))
"""


def provisioning_step(mode: str, phase: str, extra: dict[str, str]) -> list[float]:
    output = run(STEP, STEP_MODE=mode, STEP_COUNT=str(SIGNUPS + 1), PHASE=phase, **extra)
    return list(json.loads(output))[1:]  # the first also loads the template: not measured


def start_server(module: str, **extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = routing_bench.free_port()
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            f"{module}:application",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--timeout",
            "120",
        ],
        env=env(**extra),
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            request(port, "GET", "/health/", host="localhost")
            return process, port
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def request(
    port: int,
    method: str,
    path: str,
    *,
    host: str,
    body: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    cookie: str = "",
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Host": host}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    if form is not None:
        payload = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def signup_to_ready(port: int, subdomain: str) -> float:
    """Seconds from sending the signup until the new tenant serves its signed-in home page."""
    started = time.perf_counter()
    status, _, data = request(
        port,
        "POST",
        "/api/v1/signup",
        host=f"localhost:{port}",
        body={
            "name": subdomain,
            "subdomain": subdomain,
            "email": f"o@{subdomain}.test",
            "password": "bench-password-123",
        },
    )
    if status != 201:
        raise SystemExit(f"signup answered {status}: {data[:300]!r}")
    handoff = urlsplit(json.loads(data)["handoff_url"])
    # The hand-off page names the account; the person's POST of its form signs them in.
    status, headers, page = request(
        port, "GET", f"{handoff.path}?{handoff.query}", host=handoff.netloc
    )
    if status != 200:
        raise SystemExit(f"hand-off page answered {status}")
    csrf = headers["set-cookie"].split("csrftoken=")[1].split(";")[0]
    fields = dict(re.findall(rb'name="(csrfmiddlewaretoken|token)" value="([^"]+)"', page))
    status, headers, _ = request(
        port,
        "POST",
        handoff.path,
        host=handoff.netloc,
        form={name.decode(): value.decode() for name, value in fields.items()},
        cookie=f"csrftoken={csrf}",
    )
    if status != 302:
        raise SystemExit(f"hand-off answered {status}")
    session = headers["set-cookie"].split("sessionid=")[1].split(";")[0]
    status, _, page = request(port, "GET", "/", host=handoff.netloc, cookie=f"sessionid={session}")
    if status != 200 or b"Welcome to" not in page:
        raise SystemExit(f"home page answered {status}")
    return time.perf_counter() - started


def signups(module: str, label: str, phase: str, **extra: str) -> list[float]:
    if module == "config.wsgi":  # production keeps the pool full with its worker
        run(POOL_FILL, POOL_SIZE=str(SIGNUPS + 2), **extra)
    process, port = start_server(module, **extra)
    try:
        signup_to_ready(port, f"warm-{label}-{phase}")  # first request loads the code
        return [signup_to_ready(port, f"s-{label}-{phase}-{n}") for n in range(SIGNUPS)]
    finally:
        process.terminate()
        process.wait()


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def main() -> None:
    write_extra_app()
    prepare()
    rows = []
    for phase, extra in (
        ("project migrations", {}),
        ("+20 trivial migrations", {"BENCH_EXTRA_MIGRATIONS": "1"}),
    ):
        if extra:
            manage("migrate_schemas", "--shared", "--verbosity", "0", **extra)
            manage("tenants", "template", **extra)
        tag = "x" if extra else "p"
        say(f"{phase}: provisioning step, ours then stock")
        ours_step = provisioning_step("pool", tag, extra)
        replay_step = provisioning_step("template", tag, extra)
        stock_step = provisioning_step("stock", tag, extra)
        say(f"{phase}: signup-to-ready over HTTP, ours then stock")
        ours_ready = signups("config.wsgi", "ours", tag, **extra)
        stock_ready = signups("stock_wsgi", "stock", tag, **extra)
        rows.append((phase, ours_step, replay_step, stock_step, ours_ready, stock_ready))
        say(
            f"{phase}: step p50 ours {p(ours_step, 0.5):.0f} ms, "
            f"stock {p(stock_step, 0.5):.0f} ms; "
            f"ready p95 ours {p(ours_ready, 0.95):.0f} ms, stock {p(stock_ready, 0.95):.0f} ms"
        )
    write(rows)


def write(
    rows: list[tuple[str, list[float], list[float], list[float], list[float], list[float]]],
) -> None:
    table = []
    for phase, ours_step, replay_step, stock_step, ours_ready, stock_ready in rows:
        table.append(
            f"| {phase} | provisioning step (pool) "
            f"| {p(ours_step, 0.5):.1f} / {p(ours_step, 0.95):.1f} "
            f"| {p(stock_step, 0.5):.0f} / {p(stock_step, 0.95):.0f} "
            f"| {statistics.median(stock_step) / statistics.median(ours_step):.0f}x |"
        )
        table.append(
            f"| {phase} | provisioning step (template, pool empty) "
            f"| {p(replay_step, 0.5):.0f} / {p(replay_step, 0.95):.0f} "
            f"| {p(stock_step, 0.5):.0f} / {p(stock_step, 0.95):.0f} "
            f"| {statistics.median(stock_step) / statistics.median(replay_step):.0f}x |"
        )
        table.append(
            f"| {phase} | signup-to-ready | {p(ours_ready, 0.5):.0f} / {p(ours_ready, 0.95):.0f} "
            f"| {p(stock_ready, 0.5):.0f} / {p(stock_ready, 0.95):.0f} "
            f"| {statistics.median(stock_ready) / statistics.median(ours_ready):.0f}x |"
        )
    body = "\n".join(table)
    section = f"""## Tenant provisioning (`scripts/bench/provisioning.py`)

Measured {time.strftime("%Y-%m-%d")} on {routing_bench.machine()}; PostgreSQL and Redis on the
same machine; {TENANTS:,} tenants already in the database before the first measurement.

Method: for each phase, {SIGNUPS} tenants per path. *Provisioning step*: in process, the time
to give one new tenant a schema at the current migration state. Ours normally claims a
schema the worker made ahead of time from the template (one `SELECT … FOR UPDATE SKIP
LOCKED` and one `DELETE` in the signup transaction; the pool was filled before measuring,
as the worker keeps it); with the pool empty it replays the template's SQL instead (also
shown). Stock is django-tenants' `Tenant.create_schema()` (what `auto_create_schema` runs on
save: CREATE SCHEMA, then `migrate_schemas` for the schema).
*Signup-to-ready*: from sending `POST /api/v1/signup` until the new workspace answers its
signed-in home page (hand-off link followed, session cookie used), one gunicorn worker,
Argon2 password hashing as in production, the pool filled beforehand; stock serves the same
code with the template hidden, so it provisions through CREATE SCHEMA + `migrate_schemas`.
The second phase adds a tenant app with
20 trivial migrations (one CreateModel, 19 AddField) and rebuilds the template.

| phase | measure | ours p50 / p95 (ms) | stock p50 / p95 (ms) | stock ÷ ours (p50) |
|---|---|---:|---:|---:|
{body}

Targets: provisioning step p50 at most 50 ms and at least 10 times faster than stock;
signup-to-ready p95 at most 250 ms; no growth with the number of migrations.
"""
    routing_bench.write_report(section, "provisioning")
    say("wrote docs/benchmarks.md")
    print(section)


if __name__ == "__main__":
    main()
