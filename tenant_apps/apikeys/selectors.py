"""Reads of a workspace's API keys."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from shared_apps.accounts.models import User
from tenant_apps.apikeys.models import ApiKey
from tenant_apps.members import policy


def api_key_list(*, actor: User) -> QuerySet[ApiKey]:
    """Return the workspace's keys, newest first, with their creators."""
    policy.require(actor, "apikey.manage")
    return ApiKey.objects.select_related("created_by").order_by("-created_at")


def api_key_get(*, actor: User, key_id: int) -> ApiKey:
    """Return one key of the workspace.

    Raises:
        Http404: no such key here.
    """
    policy.require(actor, "apikey.manage")
    key = ApiKey.objects.filter(pk=key_id).first()
    if key is None:
        raise Http404("There is no such API key in this workspace.")
    return key
