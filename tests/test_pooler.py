"""A transaction-mode pooler is refused; session pooling and Django's own pool are not.

Real PgBouncer (Debian's package) in front of the test database, once in each mode.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tenancy.db import pooler, tenant_connection
from tests.fixtures import CliResult

SERVICE_USER = "embedded_postgres"  # the embedded PostgreSQL's user (scripts/devservices.py)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pgbouncer_binary() -> str:
    def find() -> str | None:
        return shutil.which("pgbouncer") or next(
            (path for path in ("/usr/sbin/pgbouncer",) if os.path.exists(path)), None
        )

    found = find()
    if found is None and os.geteuid() == 0:
        # Like CI's Chromium: Debian's package, installed where it is missing.
        install = ["apt-get", "install", "-y", "-qq", "pgbouncer"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            subprocess.run(install, capture_output=True, check=False)
        found = find()
    if found is None:
        pytest.fail("pgbouncer is not installed: apt-get install pgbouncer")
    return found


@dataclass(frozen=True)
class Bouncer:
    mode: str
    port: int

    def params(self) -> dict[str, Any]:
        """The test database's connection parameters, pointed at this PgBouncer."""
        params = pooler.connection_params(tenant_connection())
        return {**params, "host": "127.0.0.1", "port": str(self.port)}

    def database_url(self) -> str:
        db = tenant_connection().settings_dict
        return f"postgresql://{db['USER']}@127.0.0.1:{self.port}/{db['NAME']}"


def _start(
    binary: str, mode: str, upstream: dict[str, Any]
) -> tuple[subprocess.Popen[bytes], Path, int]:
    workdir = Path(tempfile.mkdtemp(prefix=f"pgbouncer-{mode}-"))
    port = _free_port()
    host = upstream["HOST"] or "127.0.0.1"
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={upstream['PORT'] or 5432} user={upstream['USER']}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir =\nauth_type = any\npool_mode = {mode}\n"
        "default_pool_size = 5\nmax_client_conn = 50\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
    )
    user: str | None = None
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        user = SERVICE_USER
        entry = pwd.getpwnam(user)
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    process = subprocess.Popen(
        [binary, str(workdir / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=user,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return process, workdir, port
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.terminate()
    log = (workdir / "pgbouncer.log").read_text() if (workdir / "pgbouncer.log").exists() else ""
    raise RuntimeError(f"pgbouncer ({mode}) did not start:\n{log}")


@pytest.fixture(scope="session")
def bouncers(session_tenants: Any) -> Iterator[dict[str, Bouncer]]:
    """PgBouncer in session mode and in transaction mode, both in front of the test database."""
    binary = _pgbouncer_binary()
    upstream = tenant_connection().settings_dict
    started: list[tuple[subprocess.Popen[bytes], Path, int]] = []
    try:
        found = {}
        for mode in ("session", "transaction"):
            started.append(_start(binary, mode, upstream))
            found[mode] = Bouncer(mode=mode, port=started[-1][2])
        yield found
    finally:
        for process, workdir, _port in started:
            process.terminate()
            process.wait(timeout=10)
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def _fresh_verdicts() -> Iterator[None]:
    pooler.pooler_verdicts_forget()
    yield
    pooler.pooler_verdicts_forget()


def test_direct_connection_is_safe(db: None) -> None:
    verdict = pooler.pooler_probe(pooler.connection_params(tenant_connection()))
    assert verdict == pooler.PoolerVerdict(safe=True)


def test_pgbouncer_session_mode_is_safe(bouncers: dict[str, Bouncer]) -> None:
    assert pooler.pooler_probe(bouncers["session"].params()) == pooler.PoolerVerdict(safe=True)


def test_pgbouncer_transaction_mode_is_refused(bouncers: dict[str, Bouncer]) -> None:
    verdict = pooler.pooler_probe(bouncers["transaction"].params())
    assert verdict.safe is False
    assert verdict.reason == "another client was given this client's session"
    assert "pool_mode=session or DATABASE_POOL=true" in verdict.message()


@pytest.mark.usefixtures("_fresh_verdicts")
def test_readyz_is_not_ready_behind_a_transaction_pooler(
    bouncers: dict[str, Bouncer], db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the probe's connections go through transaction-mode PgBouncer (the fault)
    params = bouncers["transaction"].params()
    monkeypatch.setattr(pooler, "connection_params", lambda wrapper: params)
    # when
    response = Client(HTTP_HOST="localhost").get("/readyz")
    # then
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["pooler"]["ok"] is False
    assert body["checks"]["pooler"]["error"] == (
        "transaction-mode connection pooler detected (another client was given this "
        "client's session): use PgBouncer pool_mode=session or DATABASE_POOL=true "
        "(Django's psycopg pool) with a direct connection"
    )
    assert {name for name, check in body["checks"].items() if not check["ok"]} == {"pooler"}


def _query_command() -> list[str]:
    return [
        "shell",
        "-c",
        "from django.db import connection; connection.cursor().execute('SELECT 1')",
    ]


def test_commands_refuse_a_transaction_pooler(
    bouncers: dict[str, Bouncer], manage_cli: Callable[..., CliResult]
) -> None:
    env = {"DATABASE_URL": bouncers["transaction"].database_url()}

    checked = manage_cli("check", "--database", "default", env=env)
    assert checked.returncode == 1
    assert "tenancy.E010" in checked.stderr
    assert "HINT: use PgBouncer pool_mode=session or DATABASE_POOL=true" in checked.stderr

    queried = manage_cli(*_query_command(), env=env)
    assert queried.returncode == 1
    assert "UnsafePoolerError: transaction-mode connection pooler detected" in queried.stderr


def test_commands_without_a_database_still_run_behind_any_pooler(
    bouncers: dict[str, Bouncer], manage_cli: Callable[..., CliResult]
) -> None:
    plain = manage_cli("check", env={"DATABASE_URL": bouncers["transaction"].database_url()})
    assert (plain.returncode, plain.stderr) == (0, "")


@pytest.mark.parametrize(
    ("through", "pool"), [("session", "false"), ("session", "true"), ("direct", "true")]
)
def test_session_pooling_and_djangos_pool_are_allowed(
    through: str, pool: str, bouncers: dict[str, Bouncer], manage_cli: Callable[..., CliResult]
) -> None:
    env = {"DATABASE_POOL": pool, "DATABASE_CONN_MAX_AGE": "0"}
    if through == "session":
        env["DATABASE_URL"] = bouncers["session"].database_url()

    checked = manage_cli("check", "--database", "default", env=env)
    queried = manage_cli(*_query_command(), env=env)

    assert (checked.returncode, queried.returncode) == (0, 0), checked.stderr + queried.stderr
    assert "pooler" not in checked.stderr + queried.stderr
