"""Configuration is validated once at start-up; a bad value is one readable line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "DATABASE_URL": "postgresql://app@127.0.0.1:5432/app",
    "REDIS_URL": "redis://127.0.0.1:6379",
}


def start(settings_module: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    # Neither a developer's .env nor the servers `make run` recorded (tests/test_devservers.py).
    environment.update(
        {
            "PLATFORM_ENV_FILE": "/nonexistent/.env",
            "PLATFORM_DEVSERVICES_STATE": "/nonexistent/services.json",
            **GOOD,
        }
    )
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    environment["DJANGO_SETTINGS_MODULE"] = settings_module
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_valid_configuration_starts() -> None:
    result = start("config.settings.local")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"DATABASE_URL": None},
            "Configuration error: DATABASE_URL is not set and no development servers are "
            "running in this checkout: start them with `make services-up` (or `make run`), "
            "or set the URLs (see .env.example)",
        ),
        (
            {"REDIS_URL": "localhost:6379"},
            "Configuration error: REDIS_URL is invalid (got 'localhost:6379'): "
            "expected a redis://host:port URL (databases are chosen per use)",
        ),
        (
            {"DEBUG": "maybe"},
            "Configuration error: DEBUG is invalid (got 'maybe'): expected true or false",
        ),
        (
            {"ROOT_DOMAIN": "Example.com/"},
            "Configuration error: ROOT_DOMAIN is invalid (got 'Example.com/'): "
            "expected a lower-case host name such as example.com",
        ),
    ],
)
def test_bad_variable_stops_startup_with_one_line(env: dict[str, str | None], line: str) -> None:
    result = start("config.settings.local", **env)
    assert result.returncode == 78
    assert result.stderr.strip() == line
    assert "Traceback" not in result.stderr


def test_production_refuses_to_start_without_secret_key() -> None:
    result = start("config.settings.prod", SECRET_KEY=None, ADMIN_URL="ops-7f3a/")
    assert result.returncode == 78
    assert result.stderr.strip() == (
        "Configuration error: SECRET_KEY is not set: expected a long random string"
    )


@pytest.mark.parametrize(
    "key",
    ["short-key", "a" * 64, "django-insecure-" + "x1y2z3" * 10],
    ids=["short", "one character repeated", "django's placeholder"],
)
def test_production_refuses_a_weak_secret_key(key: str) -> None:
    result = start("config.settings.prod", SECRET_KEY=key, ADMIN_URL="ops-7f3a/")
    assert result.returncode == 78
    assert result.stderr.startswith("Configuration error: SECRET_KEY is weak:")
    assert key not in result.stderr


def test_secret_values_are_never_echoed() -> None:
    result = start("config.settings.local", DATABASE_URL="mysql://user:hunter2@db/app")
    assert result.returncode == 78
    assert "DATABASE_URL is invalid (got 'mysql://user:***@db/app')" in result.stderr
    assert "hunter2" not in result.stderr
