"""Real services for a test session: an S3-compatible server (moto in server mode) and a
Celery worker process. Both are started once, on first use, and stopped at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test.utils import override_settings

from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenancy.db import tenant_connection

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
BUCKET = "tenant-media"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server over real HTTP, with the platform's bucket."""
    import boto3

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, 30)
        env = {
            "S3_BUCKET": BUCKET,
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "S3_REGION": "us-east-1",
            "S3_ACCESS_KEY_ID": "test",
            "S3_SECRET_ACCESS_KEY": "test",
        }
        boto3.client(
            "s3",
            endpoint_url=env["S3_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ).create_bucket(Bucket=BUCKET)
        yield env
    finally:
        process.terminate()
        process.wait()


@pytest.fixture(scope="session")
def s3_client(s3_server: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_server["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(scope="session")
def s3_storage(s3_server: dict[str, str]) -> Iterator[None]:
    """Make the platform's media storage the S3 server for the rest of the session."""
    options = {
        "bucket_name": BUCKET,
        "endpoint_url": s3_server["S3_ENDPOINT_URL"],
        "region_name": "us-east-1",
        "access_key": "test",
        "secret_key": "test",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
        "signature_version": "s3v4",
    }
    from django.conf import settings

    storages = {
        **settings.STORAGES,
        "default": {"BACKEND": "tenancy.storage.TenantS3Storage", "OPTIONS": options},
    }
    override = override_settings(STORAGES=storages)
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[Any]:
    """A local fake of the Stripe endpoints the platform calls (tests/billing/fake_stripe)."""
    from tests.billing.fake_stripe import FakeStripe

    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[Any]:
    """A local SMTP server the worker delivers e-mail to (tests/smtp_sink.py)."""
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    yield sink
    sink.shutdown()
    sink.server_close()


@pytest.fixture(scope="session")
def sentry_sink() -> Iterator[Any]:
    """A local Sentry envelope sink; the worker reports to it (tests/telemetry_receivers.py)."""
    from tests.telemetry_receivers import SentrySink

    sink = SentrySink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[Any]:
    """A local OTLP/HTTP trace receiver; the worker exports its spans to it."""
    from tests.telemetry_receivers import OtlpReceiver

    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def worker_start(
    log_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a real worker process (`args`: its options) logging to `log_path`; return it
    once it is ready."""
    db = tenant_connection().settings_dict
    database_url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    ARTIFACTS.mkdir(exist_ok=True)
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "-I",
            "tests.celery_probe",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            *args,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}",
            **(env or {}),
        },
    )
    log.close()  # the child has its own descriptor
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the test worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return process


def worker_stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def celery_worker_log(
    session_tenants: Any,
    s3_server: dict[str, str],
    stripe_server: Any,
    smtp_sink: Any,
    sentry_sink: Any,
    otlp_receiver: Any,
    django_db_blocker: Any,
) -> Iterator[Path]:
    """One real worker process (solo pool: tasks run one after another in one process),
    consuming every queue: tenants (refilled from the lanes), platform and the legacy one."""
    import redis
    from django.conf import settings

    from tests.billing.fake_stripe import API_KEY, WEBHOOK_SECRET

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # the tests' own broker db
    log_path = ARTIFACTS / "worker.log"
    process = worker_start(
        log_path,
        "--pool",
        "solo",
        env={
            **s3_server,
            # Billing on in the worker, against the fake (the test process turns it on per test).
            "STRIPE_SECRET_KEY": API_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": stripe_server.url,
            # The worker delivers e-mail over SMTP to the sink, where tests read it.
            "TEST_WORKER_SMTP_PORT": str(smtp_sink.port),
            # Error reports and traces on in the worker, to the session's local receivers
            # only (the test process turns them on per test); spans leave every 100 ms.
            "SENTRY_DSN": sentry_sink.dsn,
            "SENTRY_ENVIRONMENT": "test",
            "RELEASE": "test-release",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS": "",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "TRACES_SAMPLE_RATE": "1",  # every trace: the test follows one request's task
        },
    )
    try:
        yield log_path
    finally:
        worker_stop(process)


# Away from the test worker's broker database: nothing consumes these lanes but the test.
LANES_DB = 5


def broker_url(db: int) -> str:
    """The broker's Redis URL, pointed at another database."""
    from urllib.parse import urlsplit

    from django.conf import settings

    return urlsplit(settings.CELERY_BROKER_URL)._replace(path=f"/{db}").geturl()


def publish_on(
    connection: Any, name: str, *, options: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    """Queue task `name` through this broker connection, not the one settings name."""
    from config.celery import app

    # Celery's apply_async takes a connection; its type stubs do not say so.
    app.tasks[name].apply_async(  # type: ignore[call-arg]
        kwargs=kwargs, connection=connection, **(options or {})
    )


@pytest.fixture
def lanes_db(settings: Any) -> Iterator[Any]:
    """Task lanes in a Redis database of their own (the broker URL points there), empty."""
    from config.celery import app
    from tenancy.lanes import broker_lanes

    # Celery reads the broker URL once, when its producer pool is first made (a countdown
    # asks for it): make it now, for the suite's broker, before the URL changes below.
    assert app.producer_pool is not None
    settings.CELERY_BROKER_URL = broker_url(LANES_DB)
    settings.TASKS_FAIR_SCHEDULING = True
    settings.TASKS_READY_DEPTH = 1
    settings.TASKS_TENANT_CONCURRENCY = 10
    lanes = broker_lanes()
    lanes.client.flushdb()
    yield lanes
    lanes.client.flushdb()


@pytest.fixture
def committed(
    session_tenants: tuple[Tenant, Tenant], django_db_blocker: Any
) -> Iterator[tuple[Tenant, Tenant]]:
    """Database access without the test transaction, for work a worker process must see.

    What the test writes is committed; the projects of both session tenants are removed after.
    """
    from tenant_apps.projects.models import Project

    with django_db_blocker.unblock():
        yield session_tenants
        for tenant in session_tenants:
            with tenant_context(tenant):
                Project.objects.all().delete()


def wait_for(check: Callable[[], Any], seconds: float = 30, message: str = "") -> Any:
    """Poll until `check()` returns something truthy; fail with `message` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(message or "condition not met in time")


@pytest.fixture
def webhook_receivers() -> Iterator[Callable[..., Any]]:
    """Start webhook receivers on loopback (tests/webhook_receiver.py); stopped after the test."""
    from tests.webhook_receiver import WebhookReceiver

    started: list[WebhookReceiver] = []

    def start(status: int = 204, *, hang: bool = False) -> WebhookReceiver:
        receiver = WebhookReceiver(status=status, hang=hang).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def task_report(name: str, tenant: Tenant) -> dict[str, Any] | None:
    """Queue a probe task (tests.celery_probe) in `tenant`; once the (one, sequential)
    worker has also run one queued after it, return what the probe reported, or None when
    it was skipped."""
    import uuid

    from django.core.cache import caches

    import tests.celery_probe  # noqa: F401  (registers the probe tasks in this process too)
    from config.celery import app

    key, after = f"probe:{uuid.uuid4().hex}", f"probe:{uuid.uuid4().hex}"
    with tenant_context(tenant):
        app.tasks[name].apply_async(kwargs={"key": key})
    app.tasks["probe.connection_state"].apply_async(kwargs={"key": after})
    wait_for(lambda: caches["platform"].get(after), message="the worker did not answer")
    value = caches["platform"].get(key)
    return dict(value) if value else None
