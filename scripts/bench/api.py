"""The project list of the API under load: 1,000 projects in one workspace, a page of 50,
one gunicorn sync worker; once with an API key, once with a signed-in session, in the same
run and interleaved. Also counts the queries of one page, and checks that a key of another
workspace gets 401.

Run with `make bench-api`. Writes its section of docs/benchmarks.md. The target: p95 under
50 ms. Knobs: BENCH_ROUNDS, BENCH_SECONDS (as the other benchmarks), BENCH_CLIENTS
(concurrent clients, default 1), BENCH_PROJECTS (default 1000).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

# The routing benchmark's harness, beside this file (scripts/bench is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import routing

PROJECTS = int(os.environ.get("BENCH_PROJECTS", "1000"))
# One client: a sync worker serves one request at a time, so more clients would only queue.
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "1"))
PATH = "/api/v1/projects?page_size=50"
MODES = {"key": "API key (`Authorization: Bearer`)", "session": "signed-in session (cookie)"}

# Run inside the bench settings (manage.py shell): projects, a key, a session, and a key of
# a second workspace; prints them as one JSON line.
PREPARE = """
import json
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.utils.module_loading import import_string
from shared_apps.accounts.models import User
from shared_apps.billing.models import Plan
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.apikeys.services import api_key_create
from tenant_apps.projects.models import Project

with public_context():
    Plan.objects.update(api_requests_per_minute=None)  # the budget is not what is measured
    bench = Tenant.objects.get(subdomain="bench")
    other = Tenant.objects.get(subdomain="benchother")
with tenant_context(bench):
    owner = User.objects.get(email="owner@bench.test")
    Project.objects.all().delete()
    Project.objects.bulk_create(
        Project(name=f"Project {n:04d}", description="x" * 80, created_by=owner)
        for n in range(%(projects)d)
    )
    _, key = api_key_create(actor=owner, name="bench", scopes=["read"])
    engine = import_string(settings.SESSION_ENGINE + ".SessionStore")
    session = engine()
    session[SESSION_KEY] = str(owner.pk)
    session[BACKEND_SESSION_KEY] = "shared_apps.accounts.backends.EmailBackend"
    session[HASH_SESSION_KEY] = owner.get_session_auth_hash()
    session.create()
with tenant_context(other):
    other_owner = User.objects.get(email="owner@benchother.test")
    _, other_key = api_key_create(actor=other_owner, name="bench", scopes=["read"])
print(json.dumps({"key": key, "session": session.session_key, "other_key": other_key}))
"""

QUERIES = """
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="bench.localhost", HTTP_AUTHORIZATION="Bearer %(key)s")
client.get("%(path)s")
with CaptureQueriesContext(connection) as captured:
    response = client.get("%(path)s")
assert response.status_code == 200, response.content
assert len(response.json()["results"]) == 50
print(len(captured))
"""


def prepare() -> dict[str, str]:
    routing.prepare_database()
    env = routing.bench_env()
    routing.manage(
        "tenants",
        "create",
        "--subdomain",
        "benchother",
        "--name",
        "Bench other",
        "--owner-email",
        "owner@benchother.test",
        "--json",
        env=env,
    )
    routing.say(f"adding {PROJECTS} projects, an API key and a session")
    output = routing.manage("shell", "-c", PREPARE % {"projects": PROJECTS}, env=env)
    return json.loads(output.strip().splitlines()[-1])


def headers_for(mode: str, secrets: dict[str, str]) -> dict[str, str]:
    if mode == "key":
        return {"Authorization": f"Bearer {secrets['key']}"}
    return {"Cookie": f"sessionid={secrets['session']}"}


def get(port: int, headers: dict[str, str], host: str = routing.HOST) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", PATH, headers={"Host": host, **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def load(port: int, headers: dict[str, str], seconds: int) -> tuple[float, list[float]]:
    """Closed loop of CLIENTS clients for `seconds`: requests per second and latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []
    deadline = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status, body = get(port, headers)
            mine.append(time.perf_counter() - started)
            if status != 200:
                failures.append(f"{status} {body[:200]!r}")
                return
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"the API answered other than 200: {failures[0]}")
    return len(latencies) / (time.monotonic() - began), latencies


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    secrets = prepare()
    env = routing.bench_env()
    queries = int(
        routing.manage(
            "shell", "-c", QUERIES % {"key": secrets["key"], "path": PATH}, env=env
        ).split()[-1]
    )
    process, port = routing.start_gunicorn("platform")
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        status, _ = get(port, {"Authorization": f"Bearer {secrets['other_key']}"})
        if status != 401:
            raise SystemExit(f"another workspace's key got {status}, not 401")
        for mode in MODES:
            load(port, headers_for(mode, secrets), 2)  # warm-up
        for round_number in range(1, routing.ROUNDS + 1):
            for mode in MODES:
                rate, seen = load(port, headers_for(mode, secrets), routing.SECONDS)
                rates[mode].append(rate)
                latencies[mode].extend(seen)
            routing.say(
                f"round {round_number}/{routing.ROUNDS}: "
                + ", ".join(f"{mode} {rates[mode][-1]:.0f} req/s" for mode in MODES)
            )
    finally:
        process.terminate()
        process.wait()

    rows = "\n".join(
        f"| {label} | {statistics.median(rates[mode]):.0f} | "
        f"{statistics.median(latencies[mode]) * 1000:.1f} | {p95(latencies[mode]) * 1000:.1f} | "
        f"{len(latencies[mode])} |"
        for mode, label in MODES.items()
    )
    worst = max(p95(values) for values in latencies.values()) * 1000
    section = f"""## API: a page of the project list (`scripts/bench/api.py`)

Measured {time.strftime("%Y-%m-%d")} on {routing.machine()}; PostgreSQL and Redis on the
same machine, the load client too. One workspace with {PROJECTS} projects; `GET {PATH}`
(the first page of 50, cursor pagination) through one gunicorn sync worker, {CLIENTS}
concurrent clients in a closed loop, a new connection per request; {routing.ROUNDS} rounds
of {routing.SECONDS} s, the two ways of signing in interleaved. Request budgets are lifted
for the run (they are not what is measured). One page runs {queries} SQL statements,
whatever the number of projects (counted in a separate process). A key of another workspace
sent to this one's host is answered 401 (checked in the run; the test suite proves it costs
the key lookup and nothing else in this workspace's schema).

| signed in with | req/s (median of rounds) | p50 ms | p95 ms | requests |
|---|---:|---:|---:|---:|
{rows}

Target: p95 under 50 ms; the worse of the two is {worst:.1f} ms. With more clients than
workers a request's latency includes waiting for the worker (`BENCH_CLIENTS`).
"""
    routing.write_report(section, name="api")
    routing.say(f"worst p95 {worst:.1f} ms; docs/benchmarks.md updated")


if __name__ == "__main__":
    main()
