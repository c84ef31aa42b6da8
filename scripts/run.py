"""`make run`: migrate, make sure the demo workspace exists, then run web, the two workers
(tenant tasks, the platform queue) and beat.

Started by scripts/devservices.py, which has already set DATABASE_URL and REDIS_URL
(embedded servers where none were configured). Ctrl-C stops every process; the
embedded servers are then stopped by devservices.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Printer

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PORT = os.environ.get("PORT", "8000")
DEMO = {"subdomain": "demo", "name": "Demo Workspace", "owner_email": "owner@demo.test"}


def manage(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        capture_output=capture,
        text=True,
        check=False,
    )


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


class SafeOutput:
    """stdout that survives a closed pipe, so Ctrl-C on `make run | tee` still stops children."""

    def write(self, text: str) -> None:
        with contextlib.suppress(OSError):
            sys.stdout.write(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            sys.stdout.flush()


def main() -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.update(env)

    say("migrating the public schema and every tenant")
    migrated = manage("tenants", "migrate")  # also brings the provisioning template up to date
    if migrated.returncode != 0:
        say("migrations failed; see the output above")
        return migrated.returncode

    demo = manage(
        "tenants",
        "create",
        "--subdomain",
        DEMO["subdomain"],
        "--name",
        DEMO["name"],
        "--owner-email",
        DEMO["owner_email"],
        "--if-missing",
        "--json",
        capture=True,
    )
    if demo.returncode != 0:
        print(demo.stderr, file=sys.stderr)
        return demo.returncode
    result = json.loads(demo.stdout)
    if result["created"]:
        say(f"created the demo workspace; sign in as {DEMO['owner_email']}")
        say(f"demo owner password (shown once): {result['generated_password']}")
    else:
        say(f"demo workspace exists; sign in as {DEMO['owner_email']}")

    schedule = ROOT / ".devdata" / "celerybeat-schedule"
    schedule.parent.mkdir(exist_ok=True)
    manager = Manager(Printer(SafeOutput()))
    manager.add_process(
        "web", f"{PYTHON} manage.py runserver 127.0.0.1:{PORT}", env=env, cwd=str(ROOT)
    )
    # Tenant tasks (one lane per workspace, taking turns) and the platform's own queue,
    # each with workers of its own as in production (docs/operations.md).
    manager.add_process(
        "worker",
        f"{PYTHON} -m celery -A config worker --loglevel INFO --concurrency 2"
        " --queues tenants,default -n tenants@%h",
        env=env,
        cwd=str(ROOT),
    )
    manager.add_process(
        "platform-worker",
        f"{PYTHON} -m celery -A config worker --loglevel INFO --concurrency 1"
        " --queues platform -n platform@%h",
        env=env,
        cwd=str(ROOT),
    )
    manager.add_process(
        "beat",
        f"{PYTHON} -m celery -A config beat --loglevel INFO --schedule {schedule}",
        env=env,
        cwd=str(ROOT),
    )
    say(f"public site:    http://localhost:{PORT}/")
    say(f"demo workspace: http://demo.localhost:{PORT}/  (login page: /login/)")
    say("press Ctrl-C to stop everything")
    try:
        manager.loop()
    except BaseException:
        manager.terminate()  # never leave web, a worker or beat running on our way out
        raise
    return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
