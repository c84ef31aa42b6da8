"""Probes for load balancers and orchestrators: `/healthz`, `/readyz`, `/version`, `/metrics`.

`ProbeMiddleware` answers these exact paths on any host, above the tenant routing
middleware: a probe never resolves a host to a tenant, never enters a schema, and works
for an unknown host or a pod's IP. Bodies name what failed but never how things are
configured (no host, port, password or dependency version): a check reports a fixed
reason, and the exception itself goes to the log.

Readiness checks run concurrently, each bounded by HEALTH_CHECK_TIMEOUT_SECONDS, on
clients of their own (a fresh database connection, Redis clients with socket timeouts),
so a hung dependency costs a probe at most that long and never touches the request's
database connection. Checks that need Django's ORM (registered by higher layers, such
as the fleet's provisioning template) run afterwards in the request's thread, only when
the database answered.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from core import metrics

logger = logging.getLogger(__name__)


class CheckFailedError(Exception):
    """A readiness check failed for a reason safe to show (no configuration in it)."""


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    run: Callable[[], None]  # returns when healthy; raises otherwise
    # Runs in the request's thread after the others (it uses Django's ORM connection).
    uses_orm: bool = False
    # A failed optional check is reported but leaves the process ready.
    required: bool = True


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    ms: float
    error: str = ""
    required: bool = True

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok, "ms": self.ms}
        if self.error:
            body["error"] = self.error
        if not self.required:
            body["required"] = False
        return body


_checks: dict[str, ReadinessCheck] = {}
_version_parts: dict[str, Callable[[bool], dict[str, Any]]] = {}


def readiness_check_register(
    name: str, run: Callable[[], None], *, uses_orm: bool = False, required: bool = True
) -> None:
    """Add a check to /readyz (a higher layer registers what only it knows)."""
    _checks[name] = ReadinessCheck(name=name, run=run, uses_orm=uses_orm, required=required)


def version_part_register(name: str, part: Callable[[bool], dict[str, Any]]) -> None:
    """Add a section to /version; `part(detailed)` gets whether the caller showed the token."""
    _version_parts[name] = part


# --- the checks of this layer ------------------------------------------------------------


def _timeout() -> float:
    return float(settings.HEALTH_CHECK_TIMEOUT_SECONDS)


def database_check() -> None:
    """SELECT 1 on a connection of its own, so a probe never shares a request's state."""
    import psycopg

    params = connections[DEFAULT_DB_ALIAS].get_connection_params()
    params["connect_timeout"] = max(1, round(_timeout()))
    with psycopg.connect(**params, autocommit=True) as raw:
        raw.execute("SELECT 1")


_redis_clients: dict[str, Any] = {}
_redis_lock = threading.Lock()


def _redis(url: str) -> Any:
    import redis

    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url, socket_timeout=_timeout(), socket_connect_timeout=_timeout()
            )
            _redis_clients[url] = client
    return client


def _ping(url: str) -> None:
    if urlsplit(url).scheme in ("redis", "rediss"):
        if not _redis(url).ping():
            raise CheckFailedError("no answer to PING")
        return
    from kombu import Connection  # another broker: let kombu connect once

    with Connection(url, connect_timeout=_timeout()) as connection:
        connection.ensure_connection(max_retries=1)


def cache_check() -> None:
    """PING every Redis the caches use."""
    for location in sorted(
        {
            str(config["LOCATION"])
            for config in settings.CACHES.values()
            if "redis" in str(config.get("BACKEND", "")).lower()
        }
    ):
        _ping(location)


def broker_check() -> None:
    """PING Celery's broker (a Redis database of its own)."""
    _ping(settings.CELERY_BROKER_URL)


_s3_clients: dict[tuple[Any, ...], Any] = {}


def storage_check() -> None:
    """The media bucket answers HEAD (S3), or the media directory is there and writable."""
    config = settings.STORAGES["default"]
    options = config.get("OPTIONS", {})
    bucket = options.get("bucket_name")
    if bucket:
        import boto3
        from botocore.config import Config

        key = (options.get("endpoint_url"), options.get("region_name"), options.get("access_key"))
        client = _s3_clients.get(key)
        if client is None:
            client = boto3.client(
                "s3",
                endpoint_url=options.get("endpoint_url"),
                region_name=options.get("region_name"),
                aws_access_key_id=options.get("access_key"),
                aws_secret_access_key=options.get("secret_key"),
                config=Config(
                    connect_timeout=_timeout(),
                    read_timeout=_timeout(),
                    retries={"max_attempts": 1},
                ),
            )
            _s3_clients[key] = client
        client.head_bucket(Bucket=bucket)
        return
    root = str(options.get("location") or settings.MEDIA_ROOT)
    os.makedirs(root, exist_ok=True)  # a fresh volume: the storage would create it too
    if not os.access(root, os.W_OK):
        raise CheckFailedError("media directory is not writable")


readiness_check_register("database", database_check)
readiness_check_register("cache", cache_check)
readiness_check_register("broker", broker_check)
readiness_check_register("storage", storage_check)


# --- running them --------------------------------------------------------------------------


def _run(check: ReadinessCheck) -> CheckResult:
    started = time.perf_counter()
    try:
        check.run()
    except CheckFailedError as failure:
        error = str(failure)
    except Exception as error_:
        # The exception may name hosts and ports: it goes to the log, not the body.
        logger.warning(
            "readiness check failed",
            extra={"check": check.name, "error": f"{type(error_).__name__}: {error_}"},
        )
        error = "unavailable"
    else:
        error = ""
    ms = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(ok=not error, ms=ms, error=error, required=check.required)


def readiness() -> tuple[bool, dict[str, CheckResult]]:
    """Run every readiness check; return whether the process is ready, and each result."""
    concurrent = [check for check in _checks.values() if not check.uses_orm]
    results: dict[str, CheckResult] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, len(concurrent)), thread_name_prefix="readyz")
    try:
        futures = {pool.submit(_run, check): check for check in concurrent}
        done, _pending = wait(futures, timeout=_timeout() + 0.5)
        for future, check in futures.items():
            if future in done:
                results[check.name] = future.result()
            else:
                ms = round((_timeout() + 0.5) * 1000, 1)
                results[check.name] = CheckResult(False, ms, "timeout", check.required)
    finally:
        # A check still hanging finishes on its own socket timeout; do not wait for it.
        pool.shutdown(wait=False, cancel_futures=True)
    database_ok = results.get("database", CheckResult(True, 0.0)).ok
    for check in _checks.values():
        if check.uses_orm:
            results[check.name] = (
                _run(check)
                if database_ok
                else CheckResult(False, 0.0, "database unavailable", check.required)
            )
    ready = all(result.ok for result in results.values() if result.required)
    for name, result in results.items():
        metrics.READINESS_CHECK.labels(check=name).set(1 if result.ok else 0)
    metrics.READY.set(1 if ready else 0)
    return ready, results


def version_info(*, detailed: bool) -> dict[str, Any]:
    """The release, its commit, and what registered parts add (the tenants' migrations)."""
    body: dict[str, Any] = {"release": settings.RELEASE, "commit": settings.GIT_COMMIT or None}
    for name, part in _version_parts.items():
        try:
            body[name] = part(detailed)
        except Exception:
            logger.warning("version part unavailable", extra={"part": name}, exc_info=True)
            body[name] = {"error": "unavailable"}
    return body


# --- the middleware ------------------------------------------------------------------------


def _json(body: dict[str, Any], status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers: no I/O at all."""
    return _json({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    ready, results = readiness()
    if not ready:
        failed = sorted(name for name, result in results.items() if not result.ok)
        logger.warning("not ready", extra={"failed_checks": failed})
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {name: result.as_dict() for name, result in results.items()},
    }
    return _json(body, status=200 if ready else 503)


def version(request: HttpRequest) -> HttpResponse:
    return _json(version_info(detailed=metrics.bearer_token_valid(request)))


def health(request: HttpRequest) -> HttpResponse:
    """Answer 200 when the database and the cache respond, 503 otherwise (for load balancers).

    The older, lighter probe, kept for what calls it: /readyz checks more. Like the others it
    answers on every host, a suspended or unknown workspace's included.
    """
    checks = {
        "database": "ok" if _passes(database_check) else "unavailable",
        "cache": "ok" if _passes(cache_check) else "unavailable",
    }
    healthy = all(state == "ok" for state in checks.values())
    return _json(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
    )


def _passes(check: Callable[[], None]) -> bool:
    try:
        check()
    except Exception:
        return False
    return True


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/health/": health,
    "/healthz": healthz,
    "/readyz": readyz,
    "/version": version,
    "/metrics": metrics.metrics_response,
}


class ProbeMiddleware:
    """Answer the probe paths on any host, before (and without) tenant routing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        setattr(request, metrics.ROUTE_LABEL_ATTRIBUTE, "probe:" + request.path_info.strip("/"))
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD"
            return response
        return probe(request)
