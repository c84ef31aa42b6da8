"""Settings of the workspace API (REST framework, the OpenAPI contract, request budgets,
Idempotency-Key) and of outbound webhooks. base.py imports everything here."""

from __future__ import annotations

from config.settings.env import platform_env

ENV = platform_env()

# API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # drf-spectacular's AutoSchema, reading the nested Input/Output/Filters of our API classes.
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.ApiSchema",
    # API keys first: DRF names the first class's scheme in a 401's WWW-Authenticate
    # (`Bearer`); session authentication names none, which DRF would answer with a 403.
    # A request without a Bearer header goes on to the session.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenant_apps.apikeys.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Signed in, and an API key may do only what its scopes allow (read: safe methods;
    # others need the scope the view names in `api_key_scope`, else admin).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "tenant_apps.apikeys.authentication.ApiKeyScopePermission",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "core.api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Every list pages by cursor (core.api.pagination): 25 rows unless `?page_size=` (max 100).
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.CursorPage",
    "PAGE_SIZE": 25,
    # Client IPs for throttling: X-Forwarded-For only behind this many trusted proxies.
    "NUM_PROXIES": ENV.TRUSTED_PROXY_COUNT,
}
# Requests a minute every TenantApi allows (core.api.limits): per API key, per person
# signed in with a session, per address for requests without valid credentials; and per
# workspace, from its plan (`Plan.api_requests_per_minute`), through this function.
API_RATE_LIMITS = {"key": 600, "user": 600, "address": 60}
API_WORKSPACE_BUDGET = "shared_apps.billing.limits.plan_api_requests_per_minute"
# Every TenantApi POST goes through this: the same Idempotency-Key runs the handler once
# (tenant_apps.idempotency; records in the workspace's schema, kept 24 hours).
API_IDEMPOTENCY = "tenant_apps.idempotency.services.idempotent_call"
SPECTACULAR_SETTINGS = {
    "TITLE": "Tenant platform API",
    "VERSION": "1",
    "DESCRIPTION": (
        "The API of one workspace, at `https://<workspace>.<domain>/api/v1/`: it sees only "
        "that workspace's rows. Authenticate with an API key (`Authorization: Bearer …`) or "
        "the session of someone signed in. Errors are `application/problem+json` with a "
        "stable `code`; request budgets are announced in the RateLimit fields of every "
        "answer; a POST with an `Idempotency-Key` runs once. Every error code is listed at "
        "`/errors/` on the same host."
    ),
    "OAS_VERSION": "3.1.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # The schema is the same for every workspace, names no workspace and holds no rows.
    "SERVE_PUBLIC": True,
    # Swagger UI from our own static files (drf-spectacular-sidecar): the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "tryItOutEnabled": False},
    # The document and the pages serving it (core.api.reference) are not operations in it.
    "SERVE_INCLUDE_SCHEMA": False,
    # Projects, tasks and exports each have a `status`, of different choices.
    "ENUM_NAME_OVERRIDES": {
        "ProjectStatusEnum": "tenant_apps.projects.models.Project.Status",
        "TaskStatusEnum": "tenant_apps.projects.models.Task.Status",
        "ExportStatusEnum": "tenant_apps.projects.models.Export.Status",
    },
}

# WEBHOOKS ------------------------------------------------------------------------------
# tenant_apps.webhooks: what owners' endpoints receive, and how hard the worker tries.
WEBHOOKS_MAX_ENDPOINTS = 10
# Each attempt: seconds to connect, and to wait for the answer (Standard Webhooks suggests
# 15 to 30 s in all; shorter keeps a slow receiver from holding a worker for long).
WEBHOOKS_CONNECT_TIMEOUT = 3.0
WEBHOOKS_READ_TIMEOUT = 10.0
# Attempts per delivery; after a failure the next waits base * 4^(attempts - 1) seconds,
# at most the maximum, ±10% (30 s, 2 min, 8 min, 32 min, then hourly: about 3.7 hours).
# The maximum stays below the broker's visibility timeout (services.py).
WEBHOOKS_MAX_ATTEMPTS = 8
WEBHOOKS_RETRY_BASE_SECONDS = 30
WEBHOOKS_RETRY_MAX_SECONDS = 60 * 60
# An endpoint is disabled (and the owners e-mailed) after this many failed attempts in a
# row spanning at least this many hours; a 410 Gone disables it at once.
WEBHOOKS_DISABLE_AFTER_FAILURES = 10
WEBHOOKS_DISABLE_AFTER_HOURS = 12
# After a rotation the old secret signs beside the new one this long.
WEBHOOKS_SECRET_OVERLAP_HOURS = 24
# A pending delivery this overdue lost its message; the sweeper queues it again.
WEBHOOKS_STALE_SECONDS = 10 * 60
WEBHOOKS_DELIVERY_RETENTION_DAYS = 30
# Never on in production: deliveries to private, loopback, link-local, multicast and
# reserved addresses (tests and local receivers), and to plain http:// URLs.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
WEBHOOKS_ALLOW_PLAIN_HTTP = False
# A CA bundle for receivers' certificates instead of certifi's (empty: certifi's).
WEBHOOKS_CA_BUNDLE = ""
