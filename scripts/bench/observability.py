"""What metrics and traces cost: requests per second of the routing benchmark's page
(a tenant's `/robots.txt` through our tenancy, one gunicorn sync worker) in four modes in
the same run, interleaved: metrics and traces off, metrics on (as shipped), metrics and
traces on at the shipped sample rate, and with every request traced (spans exported over
OTLP/HTTP to a local receiver that accepts and drops them).

Run with `make bench-observability`. Writes its section of docs/benchmarks.md. The target:
both on (as shipped) cost at most 10% of the requests per second of both off.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# The routing benchmark's harness, beside this file (scripts/bench is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import routing

MODES = {
    "off": "metrics and traces off",
    "metrics": "metrics on (as shipped)",
    "both": "metrics and traces on, as shipped (`TRACES_SAMPLE_RATE` 0.1)",
    "every": "metrics and traces on, every request traced (rate 1)",
}


class _Sink(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def worker_cpu_seconds(master_pid: int) -> float:
    """CPU seconds (user and system) used so far by the gunicorn master's worker."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    if len(children) != 1:
        raise SystemExit(f"expected one gunicorn worker under {master_pid}, found {children}")
    fields = Path(f"/proc/{children[0]}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat (utime, stime), counted after the command name's ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(mode: str, otlp: str) -> tuple[subprocess.Popen[bytes], int]:
    extra = {"BENCH_OBSERVABILITY": mode}
    if mode in ("both", "every"):
        extra["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
        extra["TRACES_SAMPLE_RATE"] = "1" if mode == "every" else "0.1"
    return routing.start_gunicorn("platform", **extra)


def main() -> None:
    routing.prepare_database()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    otlp = f"http://127.0.0.1:{sink.server_address[1]}"
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    # CPU time per request: the worker's own cost, much less moved by other load on a
    # shared machine than requests per second are.
    cpu_per_request: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for mode in MODES:
            servers[mode] = start(mode, otlp)
        for _, port in servers.values():
            routing.load(port, 2)  # warm-up
        for round_number in range(1, routing.ROUNDS + 1):
            for mode, (process, port) in servers.items():
                cpu_before = worker_cpu_seconds(process.pid)
                rate = routing.load(port, routing.SECONDS)
                cpu = worker_cpu_seconds(process.pid) - cpu_before
                results[mode].append(rate)
                cpu_per_request[mode].append(cpu / max(1.0, rate * routing.SECONDS))
            routing.say(
                f"round {round_number}/{routing.ROUNDS}: "
                + ", ".join(f"{mode} {results[mode][-1]:.0f} rps" for mode in MODES)
            )
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()
        time.sleep(0.5)
        sink.shutdown()
    if not _Sink.received:
        raise SystemExit("the traced server exported no spans: the comparison would be void")

    medians = {mode: statistics.median(values) for mode, values in results.items()}
    cpu = {mode: statistics.median(values) for mode, values in cpu_per_request.items()}
    baseline = medians["off"]
    rows = "\n".join(
        f"| {label} | {medians[mode]:.0f} | {min(results[mode]):.0f} to "
        f"{max(results[mode]):.0f} | {medians[mode] / baseline:.0%} | "
        f"{cpu[mode] * 1e6:.0f} | {cpu[mode] / cpu['off'] - 1:+.0%} |"
        for mode, label in MODES.items()
    )
    cost = 1 - medians["both"] / baseline
    every_cost = 1 - medians["every"] / baseline
    cpu_cost = cpu["both"] / cpu["off"] - 1
    every_cpu_cost = cpu["every"] / cpu["off"] - 1
    section = f"""## Observability overhead (`scripts/bench/observability.py`)

Measured {time.strftime("%Y-%m-%d")} on {routing.machine()}; PostgreSQL and Redis on the
same machine. One gunicorn sync worker per mode, all four running at once and loaded in
turn ({routing.ROUNDS} interleaved rounds of {routing.SECONDS} s; medians), on a tenant's
`/robots.txt` through our tenancy. "Off" removes the request and per-tenant usage
middleware and the database and cache wrappers; traced modes export their kept spans over
OTLP/HTTP to a local receiver ({_Sink.received} export requests arrived).

| mode | req/s (median) | range | share of off | worker CPU µs per request (median) | CPU over off |
|---|---:|---:|---:|---:|---:|
{rows}

Metrics and traces together, as shipped, cost {cost:.0%} of the requests per second (target:
at most 10%) and {cpu_cost:.0%} more worker CPU per request; tracing every request costs
{every_cost:.0%} of the requests per second ({every_cpu_cost:.0%} more CPU). Requests per
second move with whatever else the machine runs; the worker's CPU time per request (read
from `/proc` around each load, the span export thread included) is the steadier measure
of the same cost. The page is close to the
cheapest a tenant serves (well under a millisecond), so these are upper bounds of the
relative cost; on pages that query the database the same fixed cost weighs less.
"""
    routing.write_report(section, name="observability")
    routing.say(
        f"both on cost {cost:.1%} of req/s, {cpu_cost:+.1%} CPU per request; "
        "docs/benchmarks.md updated"
    )


if __name__ == "__main__":
    main()
