"""Cache entries and cached content types belong to one tenant."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenancy.cache import tenant_cache_invalidate


def test_same_key_in_two_tenants_holds_two_values(tenant_a: Tenant, tenant_b: Tenant) -> None:
    with tenant_context(tenant_a):
        cache.set("dashboard:open-tasks", {"alpha": 3})
    with tenant_context(tenant_b):
        assert cache.get("dashboard:open-tasks") is None
        cache.set("dashboard:open-tasks", {"beta": 7})
    with tenant_context(tenant_a):
        assert cache.get("dashboard:open-tasks") == {"alpha": 3}
    with public_context():
        assert cache.get("dashboard:open-tasks") is None


def test_invalidating_one_tenant_leaves_the_other_intact(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    for tenant, value in ((tenant_a, "a"), (tenant_b, "b")):
        with tenant_context(tenant):
            cache.set_many({"one": value, "two": value})

    tenant_cache_invalidate(tenant_a.schema_name)

    with tenant_context(tenant_a):
        assert cache.get_many(["one", "two"]) == {}
    with tenant_context(tenant_b):
        assert cache.get_many(["one", "two"]) == {"one": "b", "two": "b"}


def test_tenant_b_cannot_delete_tenant_a_entries(tenant_a: Tenant, tenant_b: Tenant) -> None:
    with tenant_context(tenant_a):
        cache.set("report", "alpha's")
    with tenant_context(tenant_b):
        cache.delete("report")
        cache.delete_many(["report"])
    with tenant_context(tenant_a):
        assert cache.get("report") == "alpha's"


def test_content_types_are_cached_per_tenant(tenant_a: Tenant, tenant_b: Tenant) -> None:
    # given: the same model has different content type ids in the two schemas
    with tenant_context(tenant_a):
        ContentType.objects.filter(app_label="accounts", model="user").delete()
        ContentType.objects.clear_cache()
        in_a = ContentType.objects.get_for_model(User)  # recreated with a new id, cached
    with tenant_context(tenant_b):
        in_b = ContentType.objects.get_for_model(User)
        assert in_b.pk != in_a.pk
        assert ContentType.objects.get(app_label="accounts", model="user").pk == in_b.pk
    # when each tenant asks again in this process, each gets its own row from the cache
    with tenant_context(tenant_a):
        assert ContentType.objects.get_for_model(User).pk == in_a.pk
        assert ContentType.objects.get_for_id(in_a.pk).model == "user"
    with tenant_context(tenant_b):
        assert ContentType.objects.get_for_model(User).pk == in_b.pk


def test_cache_and_broker_use_separate_redis_databases() -> None:
    from urllib.parse import urlsplit

    from django.conf import settings as django_settings

    broker = urlsplit(django_settings.CELERY_BROKER_URL).path
    caches = {urlsplit(c["LOCATION"]).path for c in django_settings.CACHES.values()}
    assert broker not in caches  # cache.clear() (FLUSHDB) can never drop queued tasks
