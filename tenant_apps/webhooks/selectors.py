"""Reads of a workspace's webhook endpoints and their delivery log."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from shared_apps.accounts.models import User
from tenant_apps.members import policy
from tenant_apps.webhooks.models import Delivery, Endpoint

RECENT_DELIVERIES = 20
ENDPOINT_DELIVERIES = 50


def endpoint_list(*, actor: User) -> QuerySet[Endpoint]:
    """Return the workspace's endpoints, oldest first."""
    policy.require(actor, "webhook.manage")
    return Endpoint.objects.order_by("created_at", "pk")


def endpoint_get(*, actor: User, endpoint_id: int) -> Endpoint:
    """Return one endpoint of the workspace.

    Raises:
        Http404: no such endpoint here (another workspace's id included).
    """
    policy.require(actor, "webhook.manage")
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("There is no such webhook endpoint in this workspace.")
    return endpoint


def delivery_list_recent(*, actor: User, limit: int = RECENT_DELIVERIES) -> list[Delivery]:
    """Return the workspace's latest deliveries, to any endpoint, newest first."""
    policy.require(actor, "webhook.manage")
    return list(Delivery.objects.select_related("endpoint").order_by("-created_at", "-pk")[:limit])


def delivery_list_for_endpoint(
    *, actor: User, endpoint: Endpoint, limit: int = ENDPOINT_DELIVERIES
) -> list[Delivery]:
    """Return the endpoint's latest deliveries, newest first."""
    policy.require(actor, "webhook.manage", endpoint)
    return list(endpoint.deliveries.order_by("-created_at", "-pk")[:limit])


def delivery_get(*, actor: User, delivery_id: int) -> Delivery:
    """Return one delivery of the workspace, with its endpoint.

    Raises:
        Http404: no such delivery here.
    """
    policy.require(actor, "webhook.manage")
    delivery = Delivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404("There is no such webhook delivery in this workspace.")
    return delivery
