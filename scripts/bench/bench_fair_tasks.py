"""The probe task of scripts/bench/fairness.py, imported by its worker (`-I`).

It records how long its message waited (from the `published_at` header every publish
carries to its start), then sleeps 10 ms: a short task such as a small export.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

from config.celery import app
from tenancy import current_tenant
from tenancy.tasks import header_of

_clients: dict[int, Any] = {}


def results() -> Any:
    """Where the probes write (a Redis database of the benchmark's own), per process."""
    client = _clients.get(os.getpid())
    if client is None:
        client = _clients[os.getpid()] = redis.Redis.from_url(os.environ["BENCH_RESULTS_URL"])
    return client


@app.task(name="bench.probe", bind=True)
def probe(self: Any, *, run: str, label: str) -> None:
    started = time.time()
    published = float(header_of(self, "published_at") or started)
    time.sleep(0.01)
    tenant = current_tenant()
    row = {
        "label": label,
        "tenant": tenant.subdomain if tenant else None,
        "wait": max(0.0, started - published),
        "started": started,
    }
    results().rpush(f"bench:fairness:{run}", json.dumps(row))
