"""Settings shared by every environment; local/test/prod import this and change a handful."""

from __future__ import annotations

from typing import Any

import django_stubs_ext

from config.settings.env import BASE_DIR, platform_env

# Lets the type-checked generics (ModelAdmin[Model], ...) exist at run time too.
django_stubs_ext.monkeypatch()

ENV = platform_env()

# CORE ----------------------------------------------------------------------------------
SECRET_KEY = ENV.SECRET_KEY.get_secret_value() if ENV.SECRET_KEY else ""
DEBUG = ENV.DEBUG
ROOT_DOMAIN = ENV.ROOT_DOMAIN
# Path of the platform admin on the root host (prod refuses the guessable default).
ADMIN_URL = ENV.ADMIN_URL
# The root host serves the public site; every subdomain of it is a tenant's host.
ALLOWED_HOSTS = [ROOT_DOMAIN, f".{ROOT_DOMAIN}"]
# Links made without a request (e-mails sent by the worker) use these.
PUBLIC_URL_SCHEME = ENV.PUBLIC_URL_SCHEME
PUBLIC_URL_PORT = ENV.PUBLIC_URL_PORT
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# APPS ----------------------------------------------------------------------------------
# Public schema: tenants, domains, platform staff. Apps in both lists exist in both.
SHARED_APPS = [
    "django_tenants",
    "tenancy",
    "shared_apps.tenants",
    "shared_apps.fleet",
    "shared_apps.accounts",
    "shared_apps.audit",
    "shared_apps.billing",
    "shared_apps.mail",
    "shared_apps.signup",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "two_factor",
    "formtools",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
# Every tenant schema: the tenant's own users and domain data.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    # Second factors, backup codes and failed sign-ins are per schema, like the users.
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "axes",
    "shared_apps.accounts",
    "tenant_apps.workspace",
    "tenant_apps.projects",
    "tenant_apps.members",
    "tenant_apps.apikeys",
    "tenant_apps.webhooks",
    "tenant_apps.idempotency",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

# TENANCY -------------------------------------------------------------------------------
TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
# Issue `SET search_path` only when the schema changes, not on every cursor.
TENANT_LIMIT_SET_CALLS = True
TENANT_ROUTE_RECHECK_SECONDS = ENV.TENANT_ROUTE_RECHECK_SECONDS
# Tenant schemas kept ready for signups (claimed in one statement; refilled by the worker).
TENANT_POOL_SIZE = ENV.TENANT_POOL_SIZE
# A PostgreSQL session keeps metadata for every table it touched (about 20 KB each): a
# connection that served this many tenants is closed after its request or task.
TENANT_CONNECTION_MAX_SCHEMAS = ENV.TENANT_CONNECTION_MAX_SCHEMAS
# Citus schema-based sharding: every tenant schema becomes a distributed schema on a worker
# (tenancy.citus). "auto" follows the database: on where the citus extension is installed.
CITUS_MODE = ENV.CITUS_MODE
# How long a connection trusts that the schema in its search_path still exists.
TENANT_SCHEMA_RECHECK_SECONDS = 5.0
# The Retry-After of a workspace in maintenance (a release failed to migrate it).
TENANT_MAINTENANCE_RETRY_AFTER_SECONDS = 300
# A workspace suspended for non-payment opens only these path prefixes, so that its owners
# can sign in and pay; any other page redirects to the first. Signed-in people who may not
# manage billing see the suspended page (shared_apps.billing.middleware).
TENANT_BILLING_DOOR_PATHS = [
    "/billing/",
    "/login/",
    "/logout/",
    "/account/login/",
    "/account/two_factor/",
    "/password/",
    "/errors/",
    "/robots.txt",
]

MIDDLEWARE = [
    # First: the server span (a no-op unless tracing is configured) holds everything below.
    "core.tracing.ServerSpanMiddleware",
    "core.request_context.RequestIdMiddleware",  # even a 404 for an unknown host has an id
    # Counts and times every request, the probes and the routing middleware's own answers too.
    "core.metrics.RequestMetricsMiddleware",
    # Above the routing middleware, so the pages it answers itself (unknown or suspended
    # workspace, bad host) get the same headers, HTTPS redirect and HSTS as every other.
    "django.middleware.security.SecurityMiddleware",
    # Static files for every host, tenant hosts included, before any tenant is looked up.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # /health/, /healthz, /readyz, /version, /metrics on any host, never routed to a tenant.
    "core.health.ProbeMiddleware",
    "tenancy.middleware.TenantRoutingMiddleware",  # everything below runs in a tenant
    "tenancy.metrics.TenantUsageMiddleware",  # per-tenant request counts (top N only)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After OTP and messages: a workspace requiring two-factor lets only verified sessions in.
    "tenant_apps.workspace.middleware.TwoFactorRequiredMiddleware",
    # After sign-in: a workspace suspended for non-payment lets only its owners in, to pay.
    "shared_apps.billing.middleware.BillingDoorMiddleware",
    "axes.middleware.AxesMiddleware",
]

# DATABASE ------------------------------------------------------------------------------
_database = ENV.database()
DATABASES = {
    "default": {
        # django-tenants' backend, made to follow tenancy's ContextVar and fail closed.
        "ENGINE": "tenancy.db",
        "NAME": _database["NAME"],
        "USER": _database["USER"],
        "PASSWORD": _database["PASSWORD"],
        "HOST": _database["HOST"],
        "PORT": _database["PORT"],
        "OPTIONS": dict(_database["OPTIONS"]),  # type: ignore[call-overload]
        "CONN_MAX_AGE": 0 if ENV.DATABASE_POOL else ENV.DATABASE_CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": True,
        "TIME_ZONE": None,
    }
}
if ENV.DATABASE_POOL:
    # A backend caches metadata for every relation it touched (~20 KB per table, per
    # tenant): recycle pooled connections so serving many tenants cannot swell them.
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 2,
        "max_size": 20,
        "max_lifetime": 600,
        "max_idle": 120,
    }
DATABASE_ROUTERS = [
    "django_tenants.routers.TenantSyncRouter",
    "tenancy.db_router.TenantDataRouter",
]

# AUTH ----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out attempts before any check
    "shared_apps.accounts.backends.EmailBackend",
]
# E-mail uniqueness is a case-insensitive constraint (UNIQUE on lower(email)), which
# the check for a plain unique USERNAME_FIELD cannot see.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
PASSWORD_HASHERS = [
    "shared_apps.accounts.hashers.OwaspArgon2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password reset by e-mail (shared_apps.accounts.recovery): a link works once, for an hour,
# and only in the workspace (or on the root host) it was sent from.
PASSWORD_RESET_TIMEOUT = 60 * 60  # seconds

# RATE LIMITS ---------------------------------------------------------------------------
# core.ratelimit: attempts per scope and key (django-ratelimit rates: "5/h", "30/10m").
# Counters live in the default cache, namespaced per tenant; "client" is the
# trusted-proxy-aware address (core.http.client_ip), other keys are hashed.
RATE_LIMITS: dict[str, dict[str, str]] = {
    "signup": {"client": "20/h"},  # each signup provisions a schema
    "sign_in": {"client": "30/10m"},  # axes also locks an address+client after 5 failures
    "invitation": {"actor": "50/h", "client": "100/h"},
    "password_reset": {"address": "5/h", "client": "20/h"},
}
RATELIMIT_USE_CACHE = "default"
RATELIMIT_IP_META_KEY = "core.http.client_ip"

# SIGN-IN HARDENING ---------------------------------------------------------------------
# django-axes: 5 failures for one e-mail from one IP lock that pair out for 15 minutes.
# Its records live in each tenant's schema, so the count is per tenant as well.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "shared_apps.accounts.lockout.attempted_username"
AXES_CLIENT_IP_CALLABLE = "core.http.client_ip"
AXES_LOCKOUT_CALLABLE = "shared_apps.accounts.lockout.locked_out"
AXES_VERBOSE = False
# Two-factor sign-in (django-two-factor-auth): TOTP apps and backup codes, no SMS.
TWO_FACTOR_PATCH_ADMIN = False
OTP_TOTP_ISSUER = "Tenant Platform"
# Adding a second factor takes more than a session: the password again, then a code e-mailed
# to the account (shared_apps.accounts.devices). The code lives this long, allows this many
# tries, and the confirmation it gives lasts this long, in that session only.
ACCOUNTS_DEVICE_CODE_SECONDS = 10 * 60
ACCOUNTS_DEVICE_CODE_MAX_ATTEMPTS = 5
ACCOUNTS_DEVICE_CONFIRMATION_SECONDS = 10 * 60
# Backup codes issued at enrolment and each time new ones are asked for.
ACCOUNTS_BACKUP_CODE_COUNT = 10
# How long a process trusts the cached "two-factor required" flag of a workspace; the
# service that changes it clears the cache at once.
WORKSPACE_TWO_FACTOR_CACHE_SECONDS = 5 * 60

# SESSIONS AND COOKIES ------------------------------------------------------------------
# Host-only cookies: a session of tenant A must never be sent to tenant B's host.
SESSION_COOKIE_DOMAIN = None
CSRF_COOKIE_DOMAIN = None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# CACHE ---------------------------------------------------------------------------------
# Redis database 0 is Celery's broker (services.py), 1 the caches: clearing a cache never
# drops tasks.
REDIS_CACHE_DB = 1
CACHES: dict[str, dict[str, Any]] = {
    # Tenant data: every key is namespaced by the active tenant (tenancy.cache).
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": ENV.redis(REDIS_CACHE_DB),
        "KEY_PREFIX": "tc",
        "KEY_FUNCTION": "tenancy.cache.tenant_key",
        "TIMEOUT": 300,
    },
    # Platform-wide bookkeeping (host routing version, throttles): never tenant-scoped.
    "platform": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": ENV.redis(REDIS_CACHE_DB),
        "KEY_PREFIX": "pc",
        "TIMEOUT": None,
    },
}
# django-prometheus counts cache hits and misses (docs/observability.md).
for _cache in CACHES.values():
    if _cache["BACKEND"] == "django_redis.cache.RedisCache":
        _cache["BACKEND"] = "django_prometheus.cache.backends.redis.RedisCache"

# MEDIA ---------------------------------------------------------------------------------
# Every tenant's files live under tenants/<tenant id>/ (tenancy.storage); never public.
MEDIA_ROOT = ENV.MEDIA_ROOT
# `tenants export` without --output: outside any checkout's tracked files.
EXPORT_DIR = ENV.EXPORT_DIR
MEDIA_URL = "/media/"  # unused: files are served through signed, short-lived URLs only
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "tenancy.storage.TenantFileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if ENV.S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "tenancy.storage.TenantS3Storage",
        "OPTIONS": {
            "bucket_name": ENV.S3_BUCKET,
            "endpoint_url": ENV.S3_ENDPOINT_URL,
            "region_name": ENV.S3_REGION,
            "access_key": ENV.S3_ACCESS_KEY_ID,
            "secret_key": (
                ENV.S3_SECRET_ACCESS_KEY.get_secret_value() if ENV.S3_SECRET_ACCESS_KEY else None
            ),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            "signature_version": "s3v4",
        },
    }

# TEMPLATES AND STATIC FILES ------------------------------------------------------------
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "platform" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenancy.context_processors.tenant",
            ],
        },
    }
]
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "platform" / "static"]
# WhiteNoise serves /static/ from the app process (docs/deploy.md). Here, for `make run` and
# the tests, straight from the source folders, looked up per request: nothing to collect.
# Production serves only the collected, hashed and compressed files (prod.py).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# INTERNATIONALISATION ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# SECURITY HEADERS ----------------------------------------------------------------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "script-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# SERVICES ------------------------------------------------------------------------------
# The services around the app (queue, Stripe, e-mail, telemetry, logs, probes, metrics)
# are set in their own module, which reads ENV and the names above from here; the
# workspace API (REST framework, its contract, budgets) and outbound webhooks in theirs.
from config.settings.api import *  # noqa: E402, F403
from config.settings.services import *  # noqa: E402, F403
