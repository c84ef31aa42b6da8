"""/healthz, /readyz and /version: any host, no tenant routing, nothing configured shown."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings

from shared_apps.tenants.models import Tenant, TenantMigration
from shared_apps.tenants.services import tenant_suspend
from tenancy.db import pooler, tenant_connection
from tests.factories import TenantFactory

TOKEN = "metrics-token-for-the-tests-0123456789"
HOSTS = {
    "root": "localhost",
    "tenant": "alpha.localhost",
    "unknown tenant": "nobody.localhost",
    "pod address": "10.1.2.3:8000",  # not in ALLOWED_HOSTS: a kubelet probes the pod's IP
}
CHECKS = {"database", "cache", "broker", "storage", "pooler", "template"}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once it is closed


@pytest.fixture(autouse=True)
def _fresh_verdicts() -> Iterator[None]:
    pooler.pooler_verdicts_forget()
    yield
    pooler.pooler_verdicts_forget()


def _secrets() -> list[str]:
    """What a probe body must never contain: where and how things are reached."""
    db = tenant_connection().settings_dict
    values = [db["HOST"], f":{db['PORT']}", db["NAME"], settings.CELERY_BROKER_URL]
    values += [str(config.get("LOCATION", "")) for config in settings.CACHES.values()]
    values += [django.get_version(), "psycopg", "Traceback", str(settings.MEDIA_ROOT)]
    return [value for value in values if value]


@pytest.mark.parametrize("host", list(HOSTS))
def test_healthz_answers_on_any_host_without_io(
    host: str, tenant_a: Tenant, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        response = Client(HTTP_HOST=HOSTS[host]).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("host", list(HOSTS))
def test_readyz_reports_every_check_on_any_host(host: str, tenant_a: Tenant) -> None:
    response = Client(HTTP_HOST=HOSTS[host]).get("/readyz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ready"
    assert set(body["checks"]) == CHECKS
    assert {name: check["ok"] for name, check in body["checks"].items()} == dict.fromkeys(
        CHECKS, True
    )
    assert all(isinstance(check["ms"], float) for check in body["checks"].values())
    assert body["checks"]["template"]["required"] is False


def test_probes_answer_for_a_suspended_workspace(tenant_b: Tenant) -> None:
    tenant_suspend(tenant=tenant_b, reason="test", actor="test")
    client = Client(HTTP_HOST="beta.localhost")

    assert client.get("/").status_code == 403  # the workspace itself is closed
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/version").status_code == 200


def test_probes_never_route_a_host(tenant_a: Tenant, django_assert_num_queries: Any) -> None:
    from tenancy.host_routes import ROUTES

    ROUTES.forget()
    with django_assert_num_queries(0):
        Client(HTTP_HOST="alpha.localhost").get("/healthz")
    assert ROUTES._routes == {}  # no host was looked up
    assert ROUTES._unknown == {}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/version"])
def test_probe_bodies_show_no_configuration(path: str, tenant_a: Tenant) -> None:
    with override_settings(METRICS_TOKEN=TOKEN):
        body = Client(HTTP_HOST="localhost").get(path).content.decode()
    assert [value for value in _secrets() if value in body] == []


def test_probes_take_only_get_and_head(db: None) -> None:
    client = Client(HTTP_HOST="localhost")
    assert client.head("/healthz").status_code == 200
    refused = client.post("/readyz")
    assert (refused.status_code, refused["Allow"]) == (405, "GET, HEAD")


def test_readyz_fails_when_the_cache_redis_is_unreachable(tenant_a: Tenant) -> None:
    closed = f"redis://127.0.0.1:{_closed_port()}/1"
    caches = {name: {**config, "LOCATION": closed} for name, config in settings.CACHES.items()}
    with override_settings(CACHES=caches):
        response = Client(HTTP_HOST="localhost").get("/readyz")
        body = response.json()
    assert response.status_code == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["cache"] == {
        "ok": False,
        "ms": body["checks"]["cache"]["ms"],
        "error": "unavailable",
    }
    assert {name for name, check in body["checks"].items() if not check["ok"]} == {"cache"}
    assert closed not in response.content.decode()


def test_readyz_fails_when_the_broker_is_unreachable(tenant_a: Tenant) -> None:
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{_closed_port()}/0"):
        response = Client(HTTP_HOST="localhost").get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert {name for name, check in body["checks"].items() if not check["ok"]} == {"broker"}
    assert body["checks"]["broker"]["error"] == "unavailable"


def test_readyz_fails_when_the_database_is_unreachable(tenant_a: Tenant) -> None:
    # given new connections to the database fail (the request's own stays open)
    settings_dict = connection.settings_dict
    port = settings_dict["PORT"]
    settings_dict["PORT"] = str(_closed_port())
    try:
        response = Client(HTTP_HOST="localhost").get("/readyz")
    finally:
        settings_dict["PORT"] = port
    body = response.json()
    assert response.status_code == 503
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": False,
        "pooler": False,  # it connects too
        "template": False,
        "cache": True,
        "broker": True,
        "storage": True,
    }
    assert body["checks"]["database"]["error"] == "unavailable"
    assert body["checks"]["template"]["error"] == "database unavailable"


def test_readyz_checks_the_s3_bucket(tenant_a: Tenant, s3_server: dict[str, str]) -> None:
    def storages(bucket: str) -> dict[str, Any]:
        options = {
            "bucket_name": bucket,
            "endpoint_url": s3_server["S3_ENDPOINT_URL"],
            "region_name": "us-east-1",
            "access_key": "test",
            "secret_key": "test",
        }
        return {
            **settings.STORAGES,
            "default": {"BACKEND": "tenancy.storage.TenantS3Storage", "OPTIONS": options},
        }

    client = Client(HTTP_HOST="localhost")
    with override_settings(STORAGES=storages(s3_server["S3_BUCKET"])):
        present = client.get("/readyz").json()["checks"]["storage"]
    with override_settings(STORAGES=storages("no-such-bucket")):
        missing = client.get("/readyz")
    assert present["ok"] is True
    assert missing.status_code == 503
    assert missing.json()["checks"]["storage"]["error"] == "unavailable"
    assert "no-such-bucket" not in missing.content.decode()


def test_a_stale_template_is_reported_but_leaves_the_process_ready(tenant_a: Tenant) -> None:
    from shared_apps.tenants.models import SchemaTemplate

    SchemaTemplate.objects.update(migration_state="0" * 64)  # rolled back with the test
    response = Client(HTTP_HOST="localhost").get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["template"] == {
        "ok": False,
        "ms": response.json()["checks"]["template"]["ms"],
        "error": "provisioning template is stale: run manage.py tenants template",
        "required": False,
    }


@override_settings(RELEASE="2026.11.3", GIT_COMMIT="0123abc", METRICS_TOKEN=TOKEN)
def test_version_names_the_release_and_the_tenants_migrations(
    tenant_a: Tenant, django_assert_num_queries: Any
) -> None:
    client = Client(HTTP_HOST="nobody.localhost")
    client.get("/version")  # warm: the connection may first have to return to public
    with django_assert_num_queries(1):
        detailed = client.get("/version", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    counts = detailed["tenant_migrations"]
    assert detailed["release"] == "2026.11.3"
    assert detailed["commit"] == "0123abc"
    assert set(counts) == {"current", "behind", "failed"}
    assert counts["current"] >= 2  # the session's tenants
    state = "failed" if counts["failed"] else "behind" if counts["behind"] else "current"
    assert client.get("/version").json() == {
        "release": "2026.11.3",
        "commit": "0123abc",
        "tenant_migrations": {"state": state},  # no counts without the token
    }

    # when one tenant's migration failed and another has no record yet
    broken = TenantFactory.create(subdomain="broken", status=Tenant.Status.ACTIVE)
    TenantMigration.objects.create(tenant=broken, migration_state="", state="failed")
    TenantFactory.create(subdomain="behind", status=Tenant.Status.ACTIVE)

    after = client.get("/version", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()["tenant_migrations"]
    assert after == {
        "current": counts["current"],
        "behind": counts["behind"] + 1,
        "failed": counts["failed"] + 1,
    }
    assert client.get("/version").json()["tenant_migrations"] == {"state": "failed"}


def test_version_defaults_to_the_package_version(db: None) -> None:
    from config.settings.env import package_version

    body = Client(HTTP_HOST="localhost").get("/version").json()
    assert body["release"] == settings.RELEASE == package_version()
    assert package_version() == "0.1.0"


def test_old_health_path_still_answers(public_client: Client, client_a: Client) -> None:
    for client in (public_client, client_a):
        response = client.get("/health/")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}
