"""How long a quiet workspace's task waits while another workspace floods the queue.

A real worker (prefork, 2 processes) consumes the tenant queue. Workspace "flood" queues
5,000 probe tasks (each sleeps 10 ms) at once; workspace "quiet" queues one probe every
0.5 s until the flood has drained. Each probe records its queue wait: from its publish
(the `published_at` header) to its start in the worker. Four runs in the same session:
the quiet workspace alone and under the flood, first come first served
(TASKS_FAIR_SCHEDULING off: one queue, the way it was) and with the lanes (on).

Run with `make bench-fairness` (about 3 minutes). Writes its section of
docs/benchmarks.md. Target: under the flood, the quiet workspace's p95 wait at most 2 s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# The routing benchmark's harness, beside this file (scripts/bench is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import routing

FLOOD = int(os.environ.get("BENCH_FLOOD", "5000"))
QUIET_EVERY = 0.5
ALONE_SECONDS = 20.0
CONCURRENCY = 2
# Redis databases of the benchmark's own: `make run` uses 0 and 1, the tests 2 to 6.
BROKER_DB, RESULTS_DB = 7, 8


def redis_url(db: int) -> str:
    return urlsplit(os.environ["REDIS_URL"])._replace(path=f"/{db}").geturl()


def setup_django() -> None:
    """Configure Django in this process as the worker is: it publishes the tasks."""
    env = routing.bench_env(BENCH_BROKER_DB=str(BROKER_DB), BENCH_RESULTS_URL=redis_url(RESULTS_DB))
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")})
    os.environ.update(BENCH_BROKER_DB=str(BROKER_DB))
    for path in reversed(env["PYTHONPATH"].split(os.pathsep)):
        sys.path.insert(0, path)
    import django

    django.setup()
    import bench_fair_tasks  # noqa: F401  (registers the probe task for publishing)


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    env = routing.bench_env(BENCH_BROKER_DB=str(BROKER_DB), BENCH_RESULTS_URL=redis_url(RESULTS_DB))
    handle = log.open("w")
    process = subprocess.Popen(
        [
            routing.PYTHON,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(CONCURRENCY),
            "--queues",
            "tenants",
            "-I",
            "bench_fair_tasks",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        env=env,
        cwd=routing.ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    return process


def wait_worker_ready(tenant: Any) -> None:
    """Queue one probe and wait until it ran: the worker and its children are up."""
    import redis

    from config.celery import app
    from tenancy import tenant_context

    results = redis.Redis.from_url(redis_url(RESULTS_DB))
    with tenant_context(tenant):
        app.tasks["bench.probe"].apply_async(kwargs={"run": "warm-up", "label": "warm"})
    deadline = time.monotonic() + 60
    while not results.llen("bench:fairness:warm-up"):
        if time.monotonic() > deadline:
            raise SystemExit("the benchmark's worker did not run its first task")
        time.sleep(0.1)


def worker_cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) used so far by the worker and its pool processes."""
    total = 0.0
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def run(
    name: str, *, fair: bool, flood: bool, tenants: tuple[Any, Any], worker: int
) -> dict[str, Any]:
    """One run: the quiet workspace's probes every 0.5 s, with or without the flood."""
    import redis
    from django.conf import settings

    from config.celery import app
    from tenancy import tenant_context

    settings.TASKS_FAIR_SCHEDULING = fair  # read when each message is published
    flooding, quiet = tenants
    results = redis.Redis.from_url(redis_url(RESULTS_DB))
    key = f"bench:fairness:{name}"
    results.delete(key)
    probe = app.tasks["bench.probe"]
    stop = threading.Event()
    sent = {"quiet": 0}

    def quiet_loop() -> None:
        with tenant_context(quiet):
            while not stop.is_set():
                probe.apply_async(kwargs={"run": name, "label": "quiet"})
                sent["quiet"] += 1
                stop.wait(QUIET_EVERY)

    started = time.monotonic()
    cpu_before = worker_cpu_seconds(worker)
    thread = threading.Thread(target=quiet_loop, daemon=True)
    thread.start()
    drained = None
    if flood:
        with tenant_context(flooding):
            for _ in range(FLOOD):
                probe.apply_async(kwargs={"run": name, "label": "flood"})
        routing.say(f"{name}: {FLOOD} flood tasks queued in {time.monotonic() - started:.1f} s")
        deadline = time.monotonic() + 600
        while True:
            rows = [json.loads(r) for r in results.lrange(key, 0, -1)]
            if sum(r["label"] == "flood" for r in rows) >= FLOOD:
                drained = time.monotonic() - started
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: the flood did not drain in 10 minutes")
            time.sleep(0.5)
    else:
        time.sleep(ALONE_SECONDS)
    stop.set()
    thread.join()
    deadline = time.monotonic() + 120
    while (
        sum(json.loads(r)["label"] == "quiet" for r in results.lrange(key, 0, -1)) < sent["quiet"]
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: the quiet workspace's last tasks did not run")
        time.sleep(0.2)
    cpu = worker_cpu_seconds(worker) - cpu_before
    rows = [json.loads(r) for r in results.lrange(key, 0, -1)]
    waits = [r["wait"] for r in rows if r["label"] == "quiet"]
    wrong = [
        r
        for r in rows
        if r["tenant"] != (quiet.subdomain if r["label"] == "quiet" else flooding.subdomain)
    ]
    if wrong:
        raise SystemExit(f"{name}: {len(wrong)} probes ran in the wrong workspace")
    result = {
        "name": name,
        "fair": fair,
        "flood": flood,
        "samples": len(waits),
        "p50": statistics.median(waits),
        "p95": percentile(waits, 0.95),
        "max": max(waits),
        "drained": drained,
        "cpu_ms_per_task": cpu * 1000 / max(1, len(rows)),
    }
    routing.say(
        f"{name}: quiet p50 {result['p50'] * 1000:.0f} ms, p95 {result['p95'] * 1000:.0f} ms, "
        f"max {result['max'] * 1000:.0f} ms over {len(waits)} tasks"
        + (f"; flood drained in {drained:.1f} s" if drained else "")
        + f"; worker CPU {result['cpu_ms_per_task']:.1f} ms per task"
    )
    return result


HEADER = (
    "| scheduling | quiet workspace | tasks | wait p50 (ms) | p95 (ms) | max (ms) "
    "| flood drained in | worker CPU ms / task |"
)


def main() -> None:
    import redis

    routing.prepare_database()  # tenant "bench": the flooding workspace
    env = routing.bench_env()
    routing.manage(
        "tenants",
        "create",
        "--subdomain",
        "quiet",
        "--name",
        "Quiet",
        "--owner-email",
        "owner@quiet.test",
        "--json",
        env=env,
    )
    for db in (BROKER_DB, RESULTS_DB):
        redis.Redis.from_url(redis_url(db)).flushdb()
    setup_django()
    from shared_apps.tenants.models import Tenant

    flooding = Tenant.objects.get(subdomain="bench")
    quiet = Tenant.objects.get(subdomain="quiet")
    log = routing.ROOT / ".devdata" / "bench-fairness-worker.log"
    log.parent.mkdir(exist_ok=True)
    worker = start_worker(log)
    load_before = os.getloadavg()[0]
    results = []
    try:
        wait_worker_ready(quiet)
        for fair in (False, True):
            mode = "fair" if fair else "fifo"
            for flood in (False, True):
                name = f"{mode}-{'flood' if flood else 'alone'}"
                results.append(
                    run(name, fair=fair, flood=flood, tenants=(flooding, quiet), worker=worker.pid)
                )
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    labels = {
        ("fifo", False): "first come, first served (before)",
        ("fifo", True): "first come, first served (before)",
        ("fair", False): "lanes, one per workspace (after)",
        ("fair", True): "lanes, one per workspace (after)",
    }

    def line(r: dict[str, Any]) -> str:
        mode = labels[("fair" if r["fair"] else "fifo", r["flood"])]
        quiet = f"{FLOOD:,} tasks queued by another workspace" if r["flood"] else "alone"
        drained = f"{r['drained']:.1f} s" if r["drained"] else "n/a"
        return (
            f"| {mode} | {quiet} | {r['samples']} | {r['p50'] * 1000:.0f} | "
            f"{r['p95'] * 1000:.0f} | {r['max'] * 1000:.0f} | {drained} | "
            f"{r['cpu_ms_per_task']:.1f} |"
        )

    rows = "\n".join(line(r) for r in results)
    load_after = os.getloadavg()[0]
    fair_flood = next(r for r in results if r["fair"] and r["flood"])
    fifo_flood = next(r for r in results if not r["fair"] and r["flood"])
    met = "met" if fair_flood["p95"] <= 2.0 else "**not met**"
    section = f"""## Fair background work (`scripts/bench/fairness.py`)

Measured {time.strftime("%Y-%m-%d")} on {routing.machine()}; PostgreSQL and Redis on the
same machine, which others shared: load average {load_before:.1f} at the start,
{load_after:.1f} at the end (the drain times move with it; the order does not).

Method: one Celery worker, prefork with {CONCURRENCY} processes, consuming the tenant queue.
Workspace *flood* queues {FLOOD:,} probe tasks at once (each sleeps 10 ms, like a
small export); workspace *quiet* queues one probe every {QUIET_EVERY} s, alone for
{ALONE_SECONDS:.0f} s, or until the flood has drained. A probe's queue wait runs from its
publish (the `published_at` header) to its start in the worker. "Before" is
`TASKS_FAIR_SCHEDULING=false`: one first-come-first-served queue, as it was; "after" is
as shipped: a lane per workspace, `TASKS_READY_DEPTH` 2, the free plan's 2 tasks at
once. Same worker, same database, one run after the other.

{HEADER}
|---|---|---:|---:|---:|---:|---:|---:|
{rows}

Target: under the flood, the quiet workspace's p95 wait at most 2 s: {met}
({fair_flood["p95"] * 1000:.0f} ms; first come, first served: {fifo_flood["p95"]:.1f} s).
Both modes run the same code in the worker (a slot is taken and freed per task either
way); they differ in publishing (one script call instead of one LPUSH) and in the order
of the queue. Worker CPU per task (read from `/proc` for the worker and its pool
processes, every task of the run counted) is the steadier measure of that cost; drain
times and the waits of the quiet workspace alone move with whatever else the machine runs.
"""
    routing.write_report(section, name="fairness")
    routing.say(
        f"quiet p95 under the flood: fifo {fifo_flood['p95']:.2f} s, "
        f"fair {fair_flood['p95']:.3f} s; docs/benchmarks.md updated"
    )


if __name__ == "__main__":
    main()
