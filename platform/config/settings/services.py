"""Settings of the services around the app: the task queue, Stripe, e-mail, telemetry,
logging, health probes and metrics. base.py imports everything here (so local/test/prod see
one namespace); this module reads the environment and a few names base.py set first."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from kombu import Exchange, Queue

from config.settings.env import package_version, platform_env

ENV = platform_env()
# The cache uses Redis database 1 (base.py); the broker has its own (a cache clear is a
# FLUSHDB, which must not drop queued tasks).
REDIS_BROKER_DB = 0

# CELERY --------------------------------------------------------------------------------
CELERY_BROKER_URL = ENV.redis(REDIS_BROKER_DB)
# kombu's Redis transport, with tenant tasks queued in one lane per tenant (tenancy.broker).
CELERY_BROKER_TRANSPORT = "tenancy.broker:FairRedisTransport"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A Redis broker redelivers a message still unacknowledged after the visibility timeout:
# keep it well above the hard time limit, so a running task is never delivered twice.
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Periodic work per tenant: one dispatcher queues the task once in every active tenant.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "refresh-project-dashboards": {
        "task": "tenants.fan_out",
        "schedule": 15 * 60,
        "kwargs": {"task_name": "projects.dashboard_refresh"},
    },
    # Past-due workspaces whose grace period ran out are suspended (shared_apps.billing).
    "billing-grace-expire": {"task": "billing.grace_expire", "schedule": 15 * 60},
    # Stripe events whose processing gave up are tried again (each is applied at most once).
    "billing-events-retry": {"task": "billing.events_retry", "schedule": 30 * 60},
    # Expired sessions, in every workspace's schema and in public (platform staff).
    "clear-expired-sessions": {
        "task": "tenants.fan_out",
        "schedule": 24 * 60 * 60,
        "kwargs": {"task_name": "accounts.sessions_clear"},
    },
    # Idempotency records older than a day, in every workspace's schema.
    "clear-idempotency-records": {
        "task": "tenants.fan_out",
        "schedule": 60 * 60,
        "kwargs": {"task_name": "idempotency.records_clear"},
    },
    "clear-expired-sessions-public": {
        "task": "accounts.sessions_clear_public",
        "schedule": 24 * 60 * 60,
    },
    # Tenant schemas drifting from their migrations between releases (a table dropped by
    # hand) are quarantined before public's table of the same name is read (shared_apps.fleet).
    "tenants-verify": {"task": "tenants.verify", "schedule": 15 * 60},
    # Webhook deliveries whose message was lost are queued again; old ones are forgotten.
    "webhook-deliveries-maintain": {
        "task": "tenants.fan_out",
        "schedule": 10 * 60,
        "kwargs": {"task_name": "webhooks.deliveries_maintain"},
    },
}
# Tenant tasks go to `tenants` (the ready list the lanes refill), PlatformTask to
# `platform`, which workers of their own consume; `default` is where the previous release
# queued everything, drained by the tenant workers. A worker started without --queues
# consumes all three (development and tests).
# Each queue has its own exchange and key: bound to the default ones, a message sent to
# one exchange would reach all three.
CELERY_TASK_DEFAULT_QUEUE = "tenants"
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name) for name in ("tenants", "platform", "default")
)
CELERY_TIMEZONE = "UTC"

# FAIR TASKS ----------------------------------------------------------------------------
# tenancy.lanes: off, tenant tasks are served first come, first served (for comparison).
TASKS_FAIR_SCHEDULING = ENV.TASKS_FAIR_SCHEDULING
# Messages kept ready for the workers: a quiet tenant's task waits behind at most these
# (plus one turn of each busy tenant). Raise it with many worker processes if they idle.
TASKS_READY_DEPTH = ENV.TASKS_READY_DEPTH
# Tasks of one tenant dispatched or running at once when its plan says nothing.
TASKS_TENANT_CONCURRENCY = 2
# A dispatched task holds its tenant's slot this long until a worker starts it (a worker
# that died with it frees the slot then); once started, its time limit plus a minute.
TASKS_PICKUP_SECONDS = 300.0
# Each worker's tick: due ETAs, expired leases, refilling the ready list.
TASKS_TICK_SECONDS = 1.0

# BILLING -------------------------------------------------------------------------------
# Stripe is used only when both keys are set; otherwise every workspace is on the free plan.
STRIPE_SECRET_KEY = ENV.STRIPE_SECRET_KEY.get_secret_value() if ENV.STRIPE_SECRET_KEY else ""
STRIPE_WEBHOOK_SECRET = (
    ENV.STRIPE_WEBHOOK_SECRET.get_secret_value() if ENV.STRIPE_WEBHOOK_SECRET else ""
)
STRIPE_API_BASE = ENV.STRIPE_API_BASE
# Days a workspace whose payment failed keeps working before it is suspended.
BILLING_GRACE_DAYS = ENV.BILLING_GRACE_DAYS

# EMAIL ---------------------------------------------------------------------------------
_email = urlsplit(ENV.EMAIL_URL)
if _email.scheme in ("smtp", "smtps"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or (465 if _email.scheme == "smtps" else 587)
    EMAIL_HOST_USER = unquote(_email.username or "")
    EMAIL_HOST_PASSWORD = unquote(_email.password or "")
    EMAIL_USE_SSL = _email.scheme == "smtps"
    EMAIL_USE_TLS = _email.scheme == "smtp" and EMAIL_PORT == 587
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = f"no-reply@{ENV.ROOT_DOMAIN}"
# A mail server that hangs must not hold a worker: each delivery attempt gives up after this.
EMAIL_TIMEOUT = 10
# "task": mail is delivered by the worker, with retries; "inline": in the sending process
# once its transaction commits (tests, where the outbox is read in-process).
MAIL_DELIVERY = "task"
MAIL_MAX_RETRIES = 6

# TELEMETRY -----------------------------------------------------------------------------
# core.telemetry, once per process: error reports to Sentry when SENTRY_DSN is set, traces
# over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; both off by default. Reports and
# spans name the tenant, the request id and the user by id; nothing personal is sent
# (docs/observability.md).
SENTRY_DSN = ENV.SENTRY_DSN or ""
SENTRY_ENVIRONMENT = ENV.SENTRY_ENVIRONMENT
SENTRY_TRACES_SAMPLE_RATE = ENV.SENTRY_TRACES_SAMPLE_RATE
OTEL_EXPORTER_OTLP_ENDPOINT = ENV.OTEL_EXPORTER_OTLP_ENDPOINT or ""
OTEL_EXPORTER_OTLP_HEADERS = ENV.otlp_headers()
# Spans' service.name is this plus the process's part: tenant-platform-web, -worker, -beat.
OTEL_SERVICE_NAME = "tenant-platform"
TRACES_SAMPLE_RATE = ENV.TRACES_SAMPLE_RATE
# Probes hit these every few seconds: no trace (regular expressions, searched in the URL).
# Regular expressions over the path: the probes are called every few seconds by machines.
TELEMETRY_TRACES_EXCLUDED_URLS = [r"^/health/$", r"^/(healthz|readyz|version|metrics)$"]
# Where telemetry learns the tenant (core cannot import tenancy).
TELEMETRY_TENANT = "tenancy.telemetry.telemetry_tenant"

# LOGGING -------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "tenant": {"()": "tenancy.logging.TenantLogFilter"},
        "request": {"()": "core.logging.RequestLogFilter"},
    },
    "formatters": {"json": {"()": "core.logging.JsonLineFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["tenant", "request"],
            "formatter": "json",
        }
    },
    "root": {"handlers": ["console"], "level": ENV.LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The development server's request lines: JSON and redacted like every other line.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# HEALTH --------------------------------------------------------------------------------
# /healthz, /readyz, /version (core.health): what /version names, and how long each
# readiness check may take before it counts as failed.
RELEASE = ENV.RELEASE or package_version()
GIT_COMMIT = ENV.GIT_COMMIT or ""
HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
# A transaction-mode pooler would hand one tenant's search_path to another's queries
# (tenancy.db.pooler): each process proves there is none, again at most this often.
DATABASE_POOLER_RECHECK_SECONDS = 300

# METRICS -------------------------------------------------------------------------------
# /metrics (core.metrics) answers only `Authorization: Bearer <METRICS_TOKEN>`; 404 unset.
METRICS_TOKEN = ENV.METRICS_TOKEN.get_secret_value() if ENV.METRICS_TOKEN else ""
# Per-tenant usage: only the top N tenants of each window get a labelled series.
METRICS_TENANT_TOP_N = ENV.METRICS_TENANT_TOP_N
METRICS_TENANT_WINDOW_SECONDS = 300
# The Celery worker's private listener (no token: bind it where only Prometheus reaches).
METRICS_WORKER_PORT = ENV.METRICS_WORKER_PORT
METRICS_WORKER_ADDRESS = "0.0.0.0"
# django-prometheus: its PostgreSQL wrapper under django-tenants' and ours (tenancy.db), so
# query counts and timings come from the platform's own backend; redis cache hit/miss.
ORIGINAL_BACKEND = "django_prometheus.db.backends.postgresql"
PROMETHEUS_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
