"""Development on one machine: `make run`."""

import os

from config.settings.devservers import dev_servers_use

# Before base reads the environment: a second terminal finds `make run`'s servers.
dev_servers_use()

from config.settings.base import *  # noqa: E402, F403

DEBUG = True
# Development only: production refuses to start without SECRET_KEY.
SECRET_KEY = SECRET_KEY or "dev-only-insecure-key-0f6c1a2b9d8e7f60"  # noqa: F405
# `make run` serves plain HTTP on PORT; e-mailed links point there.
PUBLIC_URL_SCHEME = "http" if "PUBLIC_URL_SCHEME" not in os.environ else PUBLIC_URL_SCHEME  # noqa: F405
PUBLIC_URL_PORT = os.environ.get("PUBLIC_URL_PORT", os.environ.get("PORT", "8000"))
