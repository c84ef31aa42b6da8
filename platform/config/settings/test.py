"""The test suite: `make test`."""

import os

from config.settings.devservers import dev_servers_use

# Before base reads the environment: a second terminal finds `make run`'s servers.
dev_servers_use()

from config.settings.base import *  # noqa: E402, F403

SECRET_KEY = "test-only-key-5d1e2c3b4a596877"
DEBUG = False
ROOT_DOMAIN = "localhost"
PUBLIC_URL_SCHEME, PUBLIC_URL_PORT = "http", ""
ALLOWED_HOSTS = ["localhost", ".localhost", "testserver"]
# Hashing is not what most tests are about; the Argon2 setting is tested on its own.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Signups are what most tests do; the limit has tests of its own.
RATE_LIMITS = {**RATE_LIMITS, "signup": {"client": "1000/m"}}  # noqa: F405
# The test session's worker listens on its own Redis database, away from `make run`'s
# (a test that starts a worker of its own gives it another, TEST_BROKER_DB).
CELERY_BROKER_URL = ENV.redis(int(os.environ.get("TEST_BROKER_DB", "2")))  # noqa: F405
# Tests create tenants from the template unless a test fills the pool itself.
TENANT_POOL_SIZE = 0
# Tests never reach a real mail server: the test process reads its outbox in memory, and
# the test worker delivers to the suite's own SMTP sink (tests/smtp_sink.py).
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
if os.environ.get("TEST_WORKER_SMTP_PORT"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST, EMAIL_PORT = "127.0.0.1", int(os.environ["TEST_WORKER_SMTP_PORT"])
    EMAIL_USE_TLS = EMAIL_USE_SSL = False
    EMAIL_HOST_USER = EMAIL_HOST_PASSWORD = ""
# Webhook receivers in tests listen on loopback over plain HTTP, and hang for a second at most.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = WEBHOOKS_ALLOW_PLAIN_HTTP = True
WEBHOOKS_CONNECT_TIMEOUT = WEBHOOKS_READ_TIMEOUT = 1.0
# The outbox is read in-process; the worker's delivery path has its own tests.
MAIL_DELIVERY = "inline"
CACHES["default"]["KEY_PREFIX"] = "test-tc"  # noqa: F405
CACHES["platform"]["KEY_PREFIX"] = "test-pc"  # noqa: F405
# Tests never reach Stripe: keys count only when the API base is a local fake.
if not STRIPE_API_BASE.startswith(("http://127.0.0.1", "http://localhost")):  # noqa: F405
    STRIPE_SECRET_KEY = STRIPE_WEBHOOK_SECRET = ""

# A tenant app for the fleet migration tests; they swap its migrations module (also in the
# child processes they start, through FLEET_PROBE_MIGRATIONS).
TENANT_APPS = [*TENANT_APPS, "tests.fleet_app"]  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, "tests.fleet_app"]  # noqa: F405
MIGRATION_MODULES = {
    "fleet_probe": "tests.fleet_app." + os.environ.get("FLEET_PROBE_MIGRATIONS", "migrations")
}
if os.environ.get("FLEET_PROBE_MIGRATIONS") == "migrations_two_apps":  # a release of two apps
    MIGRATION_MODULES["workspace"] = "tests.fleet_app.workspace_next"
