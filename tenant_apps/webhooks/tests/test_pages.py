from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.apikeys.tests.helpers import owner_of
from tenant_apps.webhooks.models import Delivery, Endpoint
from tests.factories import DeliveryFactory, EndpointFactory, UserFactory
from tests.fixtures import browser_for

NEW_ENDPOINT = {
    "url": "https://93.184.216.34/hooks",
    "description": "CRM",
    "events": ["project.created", "task.updated"],
}


@pytest.mark.parametrize("role", [User.Role.ADMIN, User.Role.MEMBER])
def test_only_owners_open_the_webhooks_page(tenant_a: Tenant, role: str) -> None:
    with tenant_context(tenant_a):
        person = UserFactory.create(role=role)
        endpoint = EndpointFactory.create()
    client = browser_for(tenant_a, person)
    assert client.get("/settings/webhooks/").status_code == 403
    assert client.get(f"/settings/webhooks/{endpoint.pk}/").status_code == 403
    assert client.post("/settings/webhooks/new/", NEW_ENDPOINT).status_code == 403
    assert client.post(f"/settings/webhooks/{endpoint.pk}/disable/").status_code == 403
    with tenant_context(tenant_a):
        assert list(Endpoint.objects.values_list("pk", "disabled_at")) == [(endpoint.pk, None)]
    assert b"webhooks-link" not in client.get("/").content


def test_an_owner_adds_an_endpoint_and_sees_the_secret_once(tenant_a: Tenant) -> None:
    client = browser_for(tenant_a, owner_of(tenant_a))
    assert b"webhooks-link" in client.get("/").content

    created = client.post("/settings/webhooks/new/", NEW_ENDPOINT)

    assert created.status_code == 201
    secret = created.context["secret"]
    assert secret.encode() in created.content
    with tenant_context(tenant_a):
        endpoint = Endpoint.objects.get()
    assert endpoint.events == ["project.created", "task.updated"]
    for page in (f"/settings/webhooks/{endpoint.pk}/", "/settings/webhooks/"):
        shown = client.get(page)
        assert shown.status_code == 200
        assert b"93.184.216.34" in shown.content
        assert secret.encode() not in shown.content
    assert created["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.216.34/hooks", b"Webhook URLs start with https://"),
        ("https://169.254.169.254/latest/meta-data", b"a link-local address"),
        ("https://10.1.2.3/", b"a private address"),
    ],
)
def test_a_refused_url_is_shown_beside_the_field(
    tenant_a: Tenant, settings: Any, url: str, message: bytes
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = settings.WEBHOOKS_ALLOW_PLAIN_HTTP = False
    client = browser_for(tenant_a, owner_of(tenant_a))
    response = client.post("/settings/webhooks/new/", {**NEW_ENDPOINT, "url": url})
    assert response.status_code == 400
    assert message in response.content
    with tenant_context(tenant_a):
        assert not Endpoint.objects.exists()


def test_an_unknown_event_is_refused(tenant_a: Tenant) -> None:
    client = browser_for(tenant_a, owner_of(tenant_a))
    response = client.post("/settings/webhooks/new/", {**NEW_ENDPOINT, "events": ["nope"]})
    assert response.status_code == 400
    with tenant_context(tenant_a):
        assert not Endpoint.objects.exists()


def test_disable_enable_rotate_and_delete_through_the_page(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        endpoint = EndpointFactory.create()
    old_secret = endpoint.secret
    client = browser_for(tenant_a, owner_of(tenant_a))
    base = f"/settings/webhooks/{endpoint.pk}"

    assert client.post(f"{base}/disable/").status_code == 302
    with tenant_context(tenant_a):
        assert Endpoint.objects.get().disabled_reason == "by_owner"
    assert b"Disabled by an owner" in client.get(f"{base}/").content
    assert client.post(f"{base}/enable/").status_code == 302
    with tenant_context(tenant_a):
        assert Endpoint.objects.get().is_enabled

    confirm = client.get(f"{base}/rotate/")
    assert b'id="confirm"' in confirm.content
    with tenant_context(tenant_a):
        assert Endpoint.objects.get().secret == old_secret
    rotated = client.post(f"{base}/rotate/")
    assert rotated.status_code == 200
    with tenant_context(tenant_a):
        stored = Endpoint.objects.get()
    assert (stored.secret, stored.previous_secret) == (rotated.context["secret"], old_secret)

    assert b'id="confirm"' in client.get(f"{base}/delete/").content
    with tenant_context(tenant_a):
        assert Endpoint.objects.exists()
    assert client.post(f"{base}/delete/").status_code == 302
    with tenant_context(tenant_a):
        assert not Endpoint.objects.exists()


def test_send_again_from_the_log(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        delivery = DeliveryFactory.create(status="failed", attempts=8, last_status_code=500)
    client = browser_for(tenant_a, owner_of(tenant_a))
    page = client.get(f"/settings/webhooks/{delivery.endpoint_id}/")
    assert f"/settings/webhooks/deliveries/{delivery.pk}/resend/".encode() in page.content

    response = client.post(f"/settings/webhooks/deliveries/{delivery.pk}/resend/")

    assert response.status_code == 302
    with tenant_context(tenant_a):
        again = Delivery.objects.exclude(pk=delivery.pk).get()
    assert (again.resent_from_id, again.event_id) == (delivery.pk, delivery.event_id)


def test_send_again_to_a_disabled_endpoint_says_why(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a):
        endpoint = EndpointFactory.create(disabled_at=timezone.now(), disabled_reason="failing")
        delivery = DeliveryFactory.create(endpoint=endpoint, status="failed")
    client = browser_for(tenant_a, owner_of(tenant_a))
    response = client.post(f"/settings/webhooks/deliveries/{delivery.pk}/resend/", follow=True)
    assert b"enable it before sending again" in response.content
    with tenant_context(tenant_a):
        assert Delivery.objects.count() == 1


@pytest.mark.parametrize("rows", [1, 10])
def test_the_pages_queries_do_not_grow_with_the_log(
    tenant_a: Tenant, django_assert_num_queries: Any, rows: int
) -> None:
    with tenant_context(tenant_a):
        endpoints = EndpointFactory.create_batch(rows)
        for endpoint in endpoints:
            DeliveryFactory.create(endpoint=endpoint, status="delivered", last_status_code=200)
    client = browser_for(tenant_a, owner_of(tenant_a))
    client.get("/settings/webhooks/")  # warm: routing and the schema check

    # search path, session, user, endpoints, recent deliveries with their endpoints
    with django_assert_num_queries(5):
        listing = client.get("/settings/webhooks/")
    # search path, session, user, endpoint, its deliveries
    with django_assert_num_queries(5):
        detail = client.get(f"/settings/webhooks/{endpoints[0].pk}/")
    assert listing.content.count(b'id="delivery-') == rows
    assert detail.content.count(b'id="delivery-') == 1


def test_b_can_neither_see_nor_change_nor_trigger_as_endpoints(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    with tenant_context(tenant_a):
        endpoint = EndpointFactory.create(url="https://a-only.example.com/in")
        delivery = DeliveryFactory.create(endpoint=endpoint, status="failed")
        secret = endpoint.secret
    owner_b = browser_for(tenant_b, owner_of(tenant_b, "owner@beta.test"))

    listing = owner_b.get("/settings/webhooks/")
    assert listing.status_code == 200
    assert b"a-only.example.com" not in listing.content
    base = f"/settings/webhooks/{endpoint.pk}"
    for path in (f"{base}/", f"{base}/rotate/", f"{base}/delete/"):
        assert owner_b.get(path).status_code == 404
    for path in (f"{base}/disable/", f"{base}/rotate/", f"{base}/delete/"):
        assert owner_b.post(path).status_code == 404
    assert owner_b.post(f"/settings/webhooks/deliveries/{delivery.pk}/resend/").status_code == 404

    with tenant_context(tenant_a):
        stored = Endpoint.objects.get()
        assert (stored.secret, stored.disabled_at) == (secret, None)
        assert Delivery.objects.count() == 1
    with tenant_context(tenant_b):
        assert (Endpoint.objects.count(), Delivery.objects.count()) == (0, 0)
