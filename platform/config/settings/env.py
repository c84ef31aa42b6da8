"""Every environment variable the platform reads, parsed and validated once.

A missing or malformed variable stops start-up with one line per problem that names the
variable and what is expected; `.env.example` documents each one.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BASE_DIR = Path(__file__).resolve().parents[3]

DOMAIN_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"


class PlatformEnv(BaseSettings):
    """The platform's configuration, read from the environment and an optional `.env` file."""

    model_config = SettingsConfigDict(
        env_file=os.environ.get("PLATFORM_ENV_FILE", BASE_DIR / ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=True,
    )

    SECRET_KEY: SecretStr | None = Field(
        default=None, description="long random string; required in production"
    )
    DEBUG: bool = Field(default=False, description="true or false")
    DATABASE_URL: str = Field(description="a postgresql://user:password@host:port/database URL")
    DATABASE_CONN_MAX_AGE: Annotated[int, Field(ge=0)] = Field(
        default=300, description="seconds a connection is kept open (0 closes after each request)"
    )
    DATABASE_POOL: bool = Field(default=False, description="use psycopg's connection pool")
    REDIS_URL: str = Field(description="a redis://host:port URL (databases are chosen per use)")
    ROOT_DOMAIN: Annotated[str, Field(pattern=rf"^{DOMAIN_LABEL}(\.{DOMAIN_LABEL})*$")] = Field(
        default="localhost", description="a lower-case host name such as example.com"
    )
    PUBLIC_URL_SCHEME: Literal["http", "https"] = Field(
        default="https", description="http or https: the scheme of links in e-mails"
    )
    PUBLIC_URL_PORT: Annotated[str, Field(pattern=r"^([0-9]{1,5})?$")] = Field(
        default="", description="the port of links in e-mails; empty for the scheme's default"
    )
    HSTS_PRELOAD: bool = Field(
        default=False,
        description="true to ask browsers' HSTS preload lists for the domain (hard to undo)",
    )
    ADMIN_URL: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9/_-]*/$")] = Field(
        default="admin/", description="a path ending in a slash, e.g. ops-7f3a/"
    )
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR"
    )
    TENANT_ROUTE_RECHECK_SECONDS: Annotated[float, Field(ge=0, le=300)] = Field(
        default=2.0, description="seconds between checks that a cached host mapping is current"
    )
    TENANT_POOL_SIZE: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=3, description="how many ready tenant schemas to keep for signups (0 to 1000)"
    )
    TENANT_CONNECTION_MAX_SCHEMAS: Annotated[int, Field(ge=1, le=100000)] = Field(
        default=150,
        description="tenants a database connection may serve before it is recycled (1 or more)",
    )
    CITUS_MODE: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="auto, on or off: whether the database is a Citus coordinator "
        "(auto: the citus extension is installed)",
    )
    TRUSTED_PROXY_COUNT: Annotated[int, Field(ge=0, le=10)] = Field(
        default=0, description="reverse proxies in front of the app that set X-Forwarded-For"
    )
    EMAIL_URL: str = Field(
        default="console://", description="console:// or smtp://user:pass@host:port"
    )
    MEDIA_ROOT: Path = Field(
        default=BASE_DIR / ".devdata" / "media",
        description="a directory for uploaded files when no S3 bucket is configured",
    )
    EXPORT_DIR: Path = Field(
        default=BASE_DIR / ".devdata" / "exports",
        description="a directory where `tenants export` writes zips when no --output is given",
    )
    S3_BUCKET: str | None = Field(default=None, description="an S3 bucket name; enables S3 media")
    S3_ENDPOINT_URL: str | None = Field(
        default=None, description="an http(s):// URL of an S3-compatible endpoint"
    )
    S3_REGION: str = Field(default="us-east-1", description="an AWS region name")
    S3_ACCESS_KEY_ID: str | None = Field(default=None, description="an access key id")
    S3_SECRET_ACCESS_KEY: SecretStr | None = Field(default=None, description="a secret key")
    STRIPE_SECRET_KEY: SecretStr | None = Field(
        default=None, description="a Stripe secret key (sk_...); billing is off without it"
    )
    STRIPE_WEBHOOK_SECRET: SecretStr | None = Field(
        default=None, description="the signing secret of the Stripe webhook endpoint (whsec_...)"
    )
    STRIPE_API_BASE: str = Field(
        default="https://api.stripe.com", description="an http(s):// URL of the Stripe API"
    )
    BILLING_GRACE_DAYS: Annotated[int, Field(ge=0, le=60)] = Field(
        default=7, description="days a past-due workspace keeps working before suspension (0-60)"
    )
    SENTRY_DSN: str | None = Field(
        default=None,
        description="a Sentry DSN (https://key@host/project); error reports are off without it",
    )
    SENTRY_ENVIRONMENT: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = Field(
        default="production",
        description="a name such as production or staging (letters, digits, . _ -)",
    )
    SENTRY_TRACES_SAMPLE_RATE: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="share of requests Sentry traces itself, 0 to 1 (0: none)"
    )
    OTEL_EXPORTER_OTLP_ENDPOINT: str | None = Field(
        default=None,
        description="an http(s):// URL of an OTLP/HTTP collector; tracing is off without it",
    )
    OTEL_EXPORTER_OTLP_HEADERS: SecretStr | None = Field(
        default=None, description="comma-separated name=value headers sent with every export"
    )
    TRACES_SAMPLE_RATE: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.1, description="share of requests and tasks that start a trace, 0 to 1"
    )
    RELEASE: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")] | None = Field(
        default=None, description="the release name /version reports, e.g. 2026.11.3 or v1.4.0"
    )
    GIT_COMMIT: Annotated[str, Field(pattern=r"^[0-9a-f]{7,40}$")] | None = Field(
        default=None, description="the commit the release was built from (7 to 40 hex digits)"
    )
    METRICS_TOKEN: SecretStr | None = Field(
        default=None,
        description="at least 24 random characters; /metrics answers 404 without it",
    )
    METRICS_TENANT_TOP_N: Annotated[int, Field(ge=0, le=100)] = Field(
        default=10, description="tenants with their own usage series in /metrics (0 to 100)"
    )
    METRICS_WORKER_PORT: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="a TCP port where the Celery worker serves its metrics"
    )
    TASKS_FAIR_SCHEDULING: bool = Field(
        default=True,
        description="true: each workspace's tasks take turns; false: first come, first served",
    )
    TASKS_READY_DEPTH: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=2, description="tenant tasks kept ready for the workers (1 to 1000)"
    )

    @field_validator("METRICS_TOKEN")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("too short")
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
            raise ValueError("expected postgresql://user:password@host:port/database")
        return value

    @field_validator("EMAIL_URL")
    @classmethod
    def _email_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("console", "smtp", "smtps"):
            raise ValueError("expected console:// or smtp://user:pass@host:port")
        return value

    @field_validator("STRIPE_API_BASE")
    @classmethod
    def _stripe_api_base(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s):// URL")
        return value.rstrip("/")

    @field_validator("SENTRY_DSN")
    @classmethod
    def _sentry_dsn(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.username
            or not parts.hostname
            or not parts.path.strip("/")
        ):
            raise ValueError("expected https://key@host/project")
        return value

    @field_validator("OTEL_EXPORTER_OTLP_ENDPOINT")
    @classmethod
    def _otlp_endpoint(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s):// URL")
        return value.rstrip("/")

    @field_validator("OTEL_EXPORTER_OTLP_HEADERS")
    @classmethod
    def _otlp_headers(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        for pair in value.get_secret_value().split(","):
            name, sep, _ = pair.partition("=")
            if not sep or not name.strip():
                raise ValueError("expected name=value pairs separated by commas")
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("expected redis://host:port")
        return value

    def database(self) -> dict[str, object]:
        """Return Django's DATABASES["default"] for DATABASE_URL."""
        parts = urlsplit(self.DATABASE_URL)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return {
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": query.pop("host", parts.hostname or ""),
            "PORT": str(parts.port or ""),
            "OPTIONS": query,
        }

    def otlp_headers(self) -> dict[str, str]:
        """Return OTEL_EXPORTER_OTLP_HEADERS as a dict (values may be URL-encoded)."""
        if self.OTEL_EXPORTER_OTLP_HEADERS is None:
            return {}
        pairs = (
            pair.partition("=")
            for pair in self.OTEL_EXPORTER_OTLP_HEADERS.get_secret_value().split(",")
        )
        return {name.strip(): unquote(value.strip()) for name, _, value in pairs}

    def redis(self, db: int) -> str:
        """Return REDIS_URL pointed at one logical database."""
        parts = urlsplit(self.REDIS_URL)
        return parts._replace(path=f"/{db}").geturl()


def package_version() -> str:
    """The platform's version: the installed distribution's, else pyproject.toml's."""
    from importlib import metadata

    try:
        return metadata.version("tenant-platform")
    except metadata.PackageNotFoundError:
        pass
    import tomllib

    try:
        with (BASE_DIR / "pyproject.toml").open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _masked(value: object) -> object:
    """Hide a password inside a URL before it is printed."""
    if isinstance(value, str) and "@" in value and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            return value.replace(f":{parts.password}@", ":***@", 1)
    return value


def describe(error: ValidationError) -> list[str]:
    """Turn pydantic's report into one readable line per variable."""
    lines = []
    fields = PlatformEnv.model_fields
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "environment"
        field = fields.get(name)
        expected = field.description if field is not None and field.description else ""
        if problem["type"] == "missing":
            lines.append(f"{name} is not set: expected {expected}")
        else:
            shown = (
                ""
                if "SECRET" in name or "TOKEN" in name
                else f" (got {_masked(problem.get('input'))!r})"
            )
            lines.append(f"{name} is invalid{shown}: expected {expected}")
    return lines


@functools.cache
def platform_env() -> PlatformEnv:
    """The process's configuration, read once (base.py and services.py share it)."""
    return load_env()


def load_env(**overrides: object) -> PlatformEnv:
    """Read the configuration once; on a bad value print one line per problem and exit."""
    try:
        return PlatformEnv(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        for line in describe(error):
            print(f"Configuration error: {line}", file=sys.stderr)
        raise SystemExit(78) from None  # EX_CONFIG
