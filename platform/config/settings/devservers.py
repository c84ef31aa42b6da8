"""Development only: find the embedded servers `make run` or `make services-up` started.

scripts/devservices.py writes `.devdata/services.json` (URL, pid and port of each server it
runs). Where neither the environment nor `.env` sets DATABASE_URL / REDIS_URL, local and test
settings point them at those servers while their processes are alive, so that
`.venv/bin/python manage.py ...` works in a second terminal with nothing to set. Configured
URLs always win. Production settings never import this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from config.settings.env import BASE_DIR

KEYS = ("DATABASE_URL", "REDIS_URL")
NOT_RUNNING_EXIT = 78  # EX_CONFIG, as for any other missing configuration


def state_file() -> Path:
    # The override exists for the tests of this module; nothing else sets it.
    return Path(os.environ.get("PLATFORM_DEVSERVICES_STATE", BASE_DIR / ".devdata/services.json"))


def _configured() -> set[str]:
    """The variables set in the environment or in the `.env` file pydantic will read."""
    env_file = Path(os.environ.get("PLATFORM_ENV_FILE", BASE_DIR / ".env"))
    from_file = dotenv_values(env_file) if env_file.is_file() else {}
    return {key for key in KEYS if os.environ.get(key) or from_file.get(key)}


def _alive(entry: dict[str, Any]) -> bool:
    """The recorded process still runs and its port answers (a pid can be reused)."""
    pid, port = entry.get("pid"), entry.get("port")
    if not isinstance(pid, int) or not isinstance(port, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, run by another user (PostgreSQL drops root)
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def running_dev_servers() -> dict[str, str]:
    """The URLs of the embedded servers that run now, by variable name."""
    try:
        state = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict):
        return {}
    found = {}
    for key in KEYS:
        entry = state.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("url"), str) and _alive(entry):
            found[key] = entry["url"]
    return found


def dev_servers_use() -> None:
    """Point the unset service URLs at the running embedded servers; where none runs, stop
    with one line that says how to start them."""
    missing = [key for key in KEYS if key not in _configured()]
    if not missing:
        return
    running = running_dev_servers()
    for key in missing:
        if key in running:
            os.environ[key] = running[key]  # inherited by runserver's reloader and workers
    unset = [key for key in missing if key not in running]
    if unset:
        print(
            f"Configuration error: {' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} "
            "not set and no development servers "
            "are running in this checkout: start them with `make services-up` (or `make run`), "
            "or set the URLs (see .env.example)",
            file=sys.stderr,
        )
        raise SystemExit(NOT_RUNNING_EXIT)
