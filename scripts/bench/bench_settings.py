"""Settings for scripts/bench/routing.py: the same project in three tenancy modes.

BENCH_MODE=platform  our tenancy (config.settings.base as shipped)
BENCH_MODE=none      no tenancy at all: plain PostgreSQL backend, no tenant middleware
BENCH_MODE=stock     django-tenants' own TenantMainMiddleware and backend, its defaults
"""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, MIDDLEWARE

SECRET_KEY = "bench-only-key"
DEBUG = False
ALLOWED_HOSTS = ["*"]
LOGGING = {"version": 1, "disable_existing_loggers": False}

RATE_LIMITS = {**RATE_LIMITS, "signup": {"client": "100000/m"}}  # noqa: F405
# API budgets are not what the benchmarks measure (scripts/bench/api.py lifts the plans').
API_RATE_LIMITS = {"key": 10**9, "user": 10**9, "address": 10**9}
if os.environ.get("BENCH_FAST_HASH") == "1":  # bulk-filling the catalog, not measured
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if os.environ.get("BENCH_EXTRA_MIGRATIONS") == "1":  # 20 trivial migrations, see provisioning.py
    TENANT_APPS = [*TENANT_APPS, "benchextra"]  # noqa: F405
    INSTALLED_APPS = [*INSTALLED_APPS, "benchextra"]  # noqa: F405
if os.environ.get("BENCH_MIGRATIONS_VERSION"):  # scripts/bench/migrations.py
    TENANT_APPS = [*TENANT_APPS, "benchmig"]
    INSTALLED_APPS = [*INSTALLED_APPS, "benchmig"]
    MIGRATION_MODULES = {
        "benchmig": f"benchmig.migrations_v{os.environ['BENCH_MIGRATIONS_VERSION']}"
    }

MODE = os.environ.get("BENCH_MODE", "platform")
if MODE == "none":
    MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("tenancy.")]
    DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
    # django-tenants refuses to start without its router; it acts only on migrations.
    DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
elif MODE == "stock":
    MIDDLEWARE = [
        "django_tenants.middleware.main.TenantMainMiddleware",
        *[m for m in MIDDLEWARE if not m.startswith("tenancy.")],
    ]
    DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
    DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
    TENANT_LIMIT_SET_CALLS = False  # the library's default

# scripts/bench/observability.py: the same page with metrics off, as shipped (metrics on),
# and with traces exported too (its OTLP endpoint is set in the environment).
if os.environ.get("BENCH_OBSERVABILITY") == "off":
    # Every metric off: requests by route, per-tenant usage, database and cache timings.
    _METRICS_MIDDLEWARE = {
        "core.metrics.RequestMetricsMiddleware",
        "tenancy.metrics.TenantUsageMiddleware",
    }
    MIDDLEWARE = [m for m in MIDDLEWARE if m not in _METRICS_MIDDLEWARE]
    ORIGINAL_BACKEND = "django.db.backends.postgresql"
    for _cache in CACHES.values():  # noqa: F405
        _cache["BACKEND"] = "django_redis.cache.RedisCache"

# scripts/bench/fairness.py: a broker database of the benchmark's own.
if os.environ.get("BENCH_BROKER_DB"):
    CELERY_BROKER_URL = ENV.redis(int(os.environ["BENCH_BROKER_DB"]))  # noqa: F405
