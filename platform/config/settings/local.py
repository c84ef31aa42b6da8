"""Development on one machine: `make run`."""

from config.settings.base import *  # noqa: F403

DEBUG = True
# Development only: production refuses to start without SECRET_KEY.
SECRET_KEY = SECRET_KEY or "dev-only-insecure-key-0f6c1a2b9d8e7f60"  # noqa: F405
