"""`manage.py` in a second terminal finds the servers `make run` started, with nothing to set.

scripts/devservices.py records what it runs in `.devdata/services.json`; local and test
settings read it where DATABASE_URL / REDIS_URL are unset. These tests point the child at a
state file of their own (PLATFORM_DEVSERVICES_STATE) that names the servers this session
uses, so the child reads the test database and no developer's data.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tenancy.db import tenant_connection
from tests.fixtures import ROOT

Run = Callable[..., subprocess.CompletedProcess[str]]


def devservices() -> ModuleType:
    spec = importlib.util.spec_from_file_location("devservices", ROOT / "scripts/devservices.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["devservices"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


@pytest.fixture
def state_file(tmp_path: Path, session_tenants: Any) -> Callable[..., Path]:
    """Write a state file as devservices does, naming this session's servers."""
    db = tenant_connection().settings_dict
    redis_url = os.environ["REDIS_URL"]
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])

    def write(*, pid: int | None = None) -> Path:
        alive = pid if pid is not None else os.getpid()
        state = {
            "DATABASE_URL": {
                "url": f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                "pid": alive,
                "port": int(db["PORT"]),
            },
            "REDIS_URL": {"url": redis_url, "pid": alive, "port": redis_port},
        }
        path = tmp_path / "services.json"
        path.write_text(json.dumps(state))
        return path

    return write


@pytest.fixture
def second_terminal(tmp_path: Path) -> Run:
    """`.venv/bin/python manage.py ...` as typed in another terminal: no service URL set."""

    def run(*args: str, state: Path, settings: str = "config.settings.test", **env: str) -> Any:
        clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={
                **clean,
                "DJANGO_SETTINGS_MODULE": settings,
                "PLATFORM_DEVSERVICES_STATE": str(state),
                "PLATFORM_ENV_FILE": str(tmp_path / "no.env"),  # a developer's .env stays out
                **env,
            },
        )

    return run


def test_manage_py_without_database_url_finds_the_running_servers(
    state_file: Callable[..., Path], second_terminal: Run
) -> None:
    done = second_terminal("tenants", "list", "--json", state=state_file())

    assert done.returncode == 0, done.stderr
    listed = {tenant["subdomain"] for tenant in json.loads(done.stdout)["tenants"]}
    assert {"alpha", "beta"} <= listed


def test_the_help_of_any_command_works_in_a_second_terminal(
    state_file: Callable[..., Path], second_terminal: Run
) -> None:
    done = second_terminal(
        "tenants", "--help", state=state_file(), settings="config.settings.local"
    )
    assert done.returncode == 0, done.stderr
    assert "staff" in done.stdout


@pytest.mark.parametrize("state", ["dead", "missing"])
def test_without_running_servers_one_line_says_how_to_start_them(
    state_file: Callable[..., Path], second_terminal: Run, tmp_path: Path, state: str
) -> None:
    path = state_file(pid=dead_pid()) if state == "dead" else tmp_path / "none.json"

    done = second_terminal("tenants", "list", state=path, settings="config.settings.local")

    assert done.returncode == 78
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "no development servers are running" in line
    assert "`make services-up` (or `make run`)" in line


def test_configured_urls_win_over_the_running_servers(
    state_file: Callable[..., Path], second_terminal: Run
) -> None:
    done = second_terminal(
        "tenants",
        "list",
        "--json",
        state=state_file(),
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/elsewhere",
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "database_unavailable"


def test_production_settings_never_read_the_state_file(
    state_file: Callable[..., Path], second_terminal: Run
) -> None:
    done = second_terminal(
        "check",
        state=state_file(),
        settings="config.settings.prod",
        SECRET_KEY="prod-check-" + "k3y-" * 12,
        ADMIN_URL="ops-check/",
        ROOT_DOMAIN="example.com",
    )
    assert done.returncode == 78
    assert "DATABASE_URL is not set" in done.stderr


def test_a_restarted_server_takes_its_last_port_again_while_it_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = devservices()
    monkeypatch.setattr(services, "STATE_FILE", tmp_path / "services.json")
    with socket.socket() as probe:  # a port that is free now
        probe.bind(("127.0.0.1", 0))
        remembered = probe.getsockname()[1]

    # what `down` leaves behind: the port, without url or pid
    services.state_record("DATABASE_URL", port=remembered)
    assert services.last_port("DATABASE_URL") == remembered
    assert services.free_port(services.last_port("DATABASE_URL"), 55432) == remembered

    # taken meanwhile (another checkout's server): the default, else any free port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", remembered))
        taken.listen()
        assert services.free_port(remembered, 0) != remembered
