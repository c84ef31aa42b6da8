"""Tenant fixtures: two tenants whose schemas are created once per test session.

Tests get them in milliseconds; whatever a test writes inside them is rolled back with the
test's transaction, like any other row.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.test import Client

from shared_apps.accounts.models import User
from shared_apps.fleet.creation import tenant_create
from shared_apps.fleet.provisioning import template_refresh
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenancy.db import tenant_connection
from tenancy.host_routes import ROUTES
from tests.factories import TEST_PASSWORD

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SessionTenant:
    subdomain: str
    name: str
    owner_email: str

    @property
    def host(self) -> str:
        return f"{self.subdomain}.localhost"


TENANT_A = SessionTenant("alpha", "Alpha Inc", "owner@alpha.test")
TENANT_B = SessionTenant("beta", "Beta GmbH", "owner@beta.test")


def _create(spec: SessionTenant) -> Tenant:
    with public_context():
        existing = Tenant.objects.filter(subdomain=spec.subdomain).first()
        if existing is not None:
            return existing
    return tenant_create(
        name=spec.name,
        subdomain=spec.subdomain,
        owner_email=spec.owner_email,
        owner_password=TEST_PASSWORD,
    ).tenant


@pytest.fixture(scope="session")
def django_db_setup(
    django_db_setup: None,
    request: pytest.FixtureRequest,
    django_db_blocker: Any,
    django_db_keepdb: bool,
    django_db_createdb: bool,
) -> Iterator[None]:
    """pytest-django's test databases, plus the default one when no collected test asks for it.

    pytest-django creates test databases only for tests that request `db`, `transactional_db`
    or `django_db`. The worker tests reach the database through session fixtures alone, so run
    by themselves they would otherwise use the configured (unmigrated, or worse, real) database.
    """
    from django.test.utils import setup_databases, teardown_databases
    from pytest_django.fixtures import _get_databases_for_setup

    if "default" in _get_databases_for_setup(request.session.items)[0]:
        yield
        return
    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        # django-stubs say a Mapping; Django (like pytest-django) takes any container of aliases.
        aliases: Any = {"default"}
        created = setup_databases(verbosity=0, interactive=False, aliases=aliases, keepdb=keepdb)
    yield
    if not keepdb:
        with django_db_blocker.unblock():
            teardown_databases(created, verbosity=0)


@pytest.fixture(scope="session")
def provisioning_template(django_db_setup: None, django_db_blocker: Any) -> None:
    """Build the provisioning template once: every tenant created in tests is cloned from it."""
    with django_db_blocker.unblock():
        template_refresh()


@pytest.fixture(scope="session")
def session_tenants(provisioning_template: None, django_db_blocker: Any) -> tuple[Tenant, Tenant]:
    with django_db_blocker.unblock():
        return _create(TENANT_A), _create(TENANT_B)


@pytest.fixture(autouse=True)
def _template_for_database_tests(request: pytest.FixtureRequest) -> None:
    """Tests that touch the database create tenants the way production does: from the template."""
    if {"db", "transactional_db"} & set(request.fixturenames):
        request.getfixturevalue("provisioning_template")


@pytest.fixture(autouse=True)
def _fresh_tenancy_state() -> Iterator[None]:
    """Rows and schemas a test creates are rolled back; so must be what points at them."""
    ROUTES.forget()
    yield
    ROUTES.forget()
    # A tenant created inside the test is gone now: leave the connection on public.
    tenant_connection().set_schema_to_public()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def live_url(session_tenants: Any, django_db_blocker: Any) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1; every request runs on its own thread and connection.

    What the tests read through it must be committed (session tenants are; see
    `in_own_connection`). Browsers and the API contract test drive it.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedWSGIServer(("127.0.0.1", port), _QuietHandler, allow_reuse_address=True)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{port}"
    server.shutdown()
    server.server_close()
    # Keep-alive handler threads may still hold a connection; the test database must go.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def tenant_a(db: None, session_tenants: tuple[Tenant, Tenant]) -> Tenant:
    return session_tenants[0]


@pytest.fixture
def tenant_b(db: None, session_tenants: tuple[Tenant, Tenant]) -> Tenant:
    return session_tenants[1]


@pytest.fixture
def in_tenant_a(tenant_a: Tenant) -> Iterator[Tenant]:
    """Run the test body inside tenant A."""
    with tenant_context(tenant_a):
        yield tenant_a


@pytest.fixture
def client_a(tenant_a: Tenant) -> Client:
    return Client(HTTP_HOST=TENANT_A.host)


@pytest.fixture
def owner_a(client_a: Client, tenant_a: Tenant) -> Client:
    """Tenant A's browser, signed in as its owner (a session in tenant A's schema)."""
    with tenant_context(tenant_a):
        client_a.force_login(User.objects.get(email=TENANT_A.owner_email))
    return client_a


@pytest.fixture
def owner_b(client_b: Client, tenant_b: Tenant) -> Client:
    """Tenant B's browser, signed in as its owner (a session in tenant B's schema)."""
    with tenant_context(tenant_b):
        client_b.force_login(User.objects.get(email=TENANT_B.owner_email))
    return client_b


def browser_for(tenant: Tenant, user: User) -> Client:
    """A browser on the tenant's host, signed in as `user` (a user of that tenant's schema)."""
    client = Client(HTTP_HOST=f"{tenant.subdomain}.localhost")
    with tenant_context(tenant):
        client.force_login(user)
    return client


@pytest.fixture
def client_b(tenant_b: Tenant) -> Client:
    return Client(HTTP_HOST=TENANT_B.host)


@pytest.fixture
def public_client(db: None) -> Client:
    return Client(HTTP_HOST="localhost")


@pytest.fixture
def root(db: None) -> Client:
    """The root domain's site, as a browser on port 8000 reaches it."""
    return Client(HTTP_HOST="localhost:8000")


def rate_limits_forget() -> None:
    """Forget every rate-limit counter (core.ratelimit), in every tenant's namespace."""
    from django.core.cache import caches
    from django_redis import get_redis_connection  # type: ignore[import-untyped]

    redis = get_redis_connection("default")
    for key in redis.scan_iter(match=f"{caches['default'].key_prefix}:*:rl:*"):
        redis.delete(key)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Attempts counted by earlier tests (or runs) do not count against this test's."""
    rate_limits_forget()


@pytest.fixture
def fresh_signup_throttle() -> None:
    """Signups earlier in the session do not count against this test's (rate limits are
    forgotten before every test; the fixture names the dependency)."""


def in_own_connection(work: Callable[[], object], tenant: Tenant | None = None) -> None:
    """Run `work` on another thread, hence another connection: what it writes is committed."""
    import threading

    from django.db import connections

    def run() -> None:
        try:
            with tenant_context(tenant) if tenant else public_context():
                work()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def table_columns(schema_name: str, table: str) -> set[str]:
    """The columns a table has in one schema, read from the catalog."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [schema_name, table],
        )
        return {row[0] for row in cursor.fetchall()}


def follow_handoff(location: str) -> tuple[Client, Any]:
    """Follow a signup's hand-off link on the new workspace's host, like its browser: open
    the page it leads to, then continue from it (a POST with the page's CSRF token)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(location)
    browser = Client(HTTP_HOST=parts.netloc, enforce_csrf_checks=True)
    page = browser.get(f"{parts.path}?{parts.query}")
    if page.status_code != 200:
        return browser, page
    fields = {key: values[0] for key, values in parse_qs(parts.query).items()}
    fields["csrfmiddlewaretoken"] = page.context["csrf_token"]
    landed = browser.post(parts.path, fields)
    browser.handler.enforce_csrf_checks = False  # later steps of a test post like other clients
    return browser, landed


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def manage_cli(session_tenants: tuple[Tenant, Tenant]) -> Callable[..., CliResult]:
    """Run `manage.py` in a child process against the test database, as an operator would.

    The child commits; use it for refusals and read-only verbs, and call_command for writes.
    """
    db = tenant_connection().settings_dict
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> CliResult:
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": url,
                **(env or {}),
            },
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


def sign_in(client: Client, email: str, password: str, *, token: str | None = None) -> Any:
    """Sign in through the two-factor login flow (password step, then the code if asked)."""
    response = client.post(
        "/login/",
        {"login_view-current_step": "auth", "auth-username": email, "auth-password": password},
    )
    if token is not None:
        response = client.post(
            "/login/", {"login_view-current_step": "token", "token-otp_token": token}
        )
    return response


def sign_in_request(ip: str = "192.0.2.10") -> Any:
    """A request for `authenticate()`: the lockout backend counts attempts per client."""
    from django.test import RequestFactory

    return RequestFactory().post("/login/", REMOTE_ADDR=ip)


def tenant_purge(subdomain: str) -> None:
    """Remove a tenant that a test committed from another connection (live server, races).

    Tests only: production removes tenants through archive and delete.
    """
    import threading

    from django.db import connections

    from shared_apps.tenants.models import Domain
    from tenancy import schemas

    def work() -> None:
        try:
            with public_context():
                for tenant in Tenant.objects.filter(subdomain=subdomain):
                    Domain.objects.filter(tenant=tenant).delete()
                    schemas.schema_drop(tenant.schema_name)
                    tenant.delete()
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
