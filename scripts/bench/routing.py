"""Requests per second of one worker serving a trivial signed-out tenant page.

Three modes in the same run, on the same database and page (a tenant's `/robots.txt`,
rendered from a template by a TemplateView):
our tenancy, no tenancy at all, and stock django-tenants `TenantMainMiddleware`. Also the
SQL statements per warm request of each, and, under ASGI, how many new database sessions
a burst of requests opens with and without Django's psycopg pool.

Run with `make bench` (embedded PostgreSQL and Redis when none are configured). Writes
its section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform as host_platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
DB_NAME = "bench_requests"
HOST = "bench.localhost"
PAGE = "/robots.txt"
MODES = ["platform", "none", "stock"]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ASGI_REQUESTS = 300


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def bench_env(mode: str = "platform", **extra: str) -> dict[str, str]:
    base_url = urlsplit(os.environ["DATABASE_URL"])
    return {
        **os.environ,
        "DATABASE_URL": base_url._replace(path=f"/{DB_NAME}").geturl(),
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(ROOT / "platform"), str(ROOT)]),
        "BENCH_MODE": mode,
        **extra,
    }


def python_run(code: str, env: dict[str, str]) -> str:
    """Run `code` in a fresh Python under `env` (a benchmark step); return its output."""
    done = subprocess.run(
        [PYTHON, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-3000:]}")
    return done.stdout


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def prepare_database() -> None:
    import psycopg

    admin_url = urlsplit(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    env = bench_env()
    say("migrating a fresh database and creating the tenant 'bench'")
    manage("migrate_schemas", "--verbosity", "0", env=env)
    manage(
        "tenants",
        "create",
        "--subdomain",
        "bench",
        "--name",
        "Bench",
        "--owner-email",
        "owner@bench.test",
        "--json",
        env=env,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(port: int, path: str = PAGE) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", headers={"Host": HOST}
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not answer 200 on {path}")


def start_gunicorn(mode: str, **extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start one sync gunicorn worker in `mode` (`extra`: more environment) and wait for it."""
    port = free_port()
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--workers",
            "1",
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        env=bench_env(mode, **extra),
        cwd=ROOT,
    )
    wait_ready(port)
    return process, port


def load(port: int, seconds: int) -> float:
    """Return requests per second against one port for `seconds`."""
    url = f"http://127.0.0.1:{port}{PAGE}"
    if shutil.which("wrk"):
        done = subprocess.run(
            ["wrk", "-t1", "-c4", f"-d{seconds}s", "-H", f"Host: {HOST}", url],
            capture_output=True,
            text=True,
            check=True,
        )
        if "Non-2xx" in done.stdout:
            raise SystemExit(f"non-2xx answers during the benchmark:\n{done.stdout}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    return python_load(port, seconds)


def python_load(port: int, seconds: int) -> float:
    """A fallback client: four threads, a new connection per request (gunicorn sync closes)."""
    count = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    raw = f"GET {PAGE} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()

    def worker() -> None:
        nonlocal count
        done = 0
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", port)) as conn:
                conn.sendall(raw)
                while conn.recv(65536):
                    pass
            done += 1
        with lock:
            count += done

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / seconds


QUERY_PROBE = """
import django, json
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="bench.localhost")
for _ in range(3):
    assert client.get("/robots.txt").status_code == 200
with CaptureQueriesContext(connection) as cold_ctx:
    pass
with CaptureQueriesContext(connection) as ctx:
    for _ in range(10):
        client.get("/robots.txt")
print(json.dumps({"per_request": len(ctx) / 10, "sql": sorted({q["sql"][:60] for q in ctx})}))
"""


def queries_per_request(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [PYTHON, "-c", QUERY_PROBE],
        env=bench_env(mode),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def database_sessions() -> int:
    import psycopg

    with psycopg.connect(bench_env()["DATABASE_URL"], autocommit=True) as conn:
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", [DB_NAME]
        ).fetchone()
        return int(row[0]) if row else 0


def asgi_sessions(pool: bool) -> int:
    """New database sessions opened by ASGI_REQUESTS requests to a tenant page using the DB."""
    port = free_port()
    env = bench_env(
        "platform", DATABASE_POOL="true" if pool else "false", DATABASE_CONN_MAX_AGE="0"
    )
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_ready(port, "/health/")
        for _ in range(20):  # warm-up: let the pool open its connections
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/health/", headers={"Host": HOST})
            ).read()
        time.sleep(1.0)  # pg_stat_database is updated asynchronously
        before = database_sessions()
        for _ in range(ASGI_REQUESTS):
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/health/", headers={"Host": HOST})
            ).read()
        time.sleep(1.0)
        return database_sessions() - before
    finally:
        process.terminate()
        process.wait()


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {host_platform.python_version()}, "
        f"{host_platform.system()} {host_platform.release()}"
    )


def write_report(section: str, name: str = "requests") -> None:
    """Replace this benchmark's section of docs/benchmarks.md (between its markers)."""
    path = ROOT / "docs" / "benchmarks.md"
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{section.strip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    prepare_database()
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for mode in MODES:
            servers[mode] = start_gunicorn(mode)
        for _, port in servers.values():
            load(port, 2)  # warm-up
        for round_number in range(1, ROUNDS + 1):
            for mode, (_, port) in servers.items():
                results[mode].append(load(port, SECONDS))
            say(
                f"round {round_number}/{ROUNDS}: "
                + ", ".join(f"{mode} {results[mode][-1]:.0f} rps" for mode in MODES)
            )
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()

    medians = {mode: statistics.median(values) for mode, values in results.items()}
    statements = {mode: queries_per_request(mode) for mode in MODES}
    sessions_pool = asgi_sessions(pool=True)
    sessions_plain = asgi_sessions(pool=False)

    baseline = medians["none"]
    labels = {
        "platform": "our tenancy (`tenancy.middleware`)",
        "none": "no tenancy at all",
        "stock": "stock django-tenants `TenantMainMiddleware`",
    }
    rows = "\n".join(
        f"| {labels[mode]} | {medians[mode]:.0f} "
        f"| {min(results[mode]):.0f} to {max(results[mode]):.0f} "
        f"| {medians[mode] / baseline:.0%} | {statements[mode]['per_request']:g} |"
        for mode in MODES
    )
    client = "wrk, 1 thread, 4 connections" if shutil.which("wrk") else "Python client, 4 threads"
    section = f"""## Request routing overhead (`scripts/bench/routing.py`)

Measured {time.strftime("%Y-%m-%d")} on {machine()}; PostgreSQL and Redis on the same machine.

Method: one gunicorn sync worker per mode, all three serving the same tenant's signed-out
`GET /robots.txt` (`Host: bench.localhost`; a TemplateView) from the same database;
{client};
{ROUNDS} rounds of {SECONDS} s, modes interleaved within each round; the table gives the
median and range. Statements per request: SQL sent to PostgreSQL per warm request, counted
by Django's query capture in a separate process over 10 requests.

| mode | median req/s | range | of no-tenancy | SQL statements / warm request |
|---|---:|---:|---:|---:|
{rows}

Target: our tenancy keeps at least 90% of the no-tenancy throughput and adds no round trip
on a warm request. Stock django-tenants looks the domain up (one query joining domain and
tenant) and issues `SET search_path` on every request.

Under ASGI (uvicorn, `DATABASE_CONN_MAX_AGE=0`), {ASGI_REQUESTS} requests to a tenant page that
queries the database opened **{sessions_pool}** new database sessions with Django's psycopg
pool (`DATABASE_POOL=true`) and **{sessions_plain}** without it.
"""
    write_report(section)
    say("wrote docs/benchmarks.md")
    print(section)


if __name__ == "__main__":
    main()
