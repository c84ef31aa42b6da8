from __future__ import annotations

from django.conf import settings as django_settings
from django.core.cache import cache

from tenant_apps.workspace.models import WorkspaceSettings

# In the default cache, which namespaces every key by the active tenant (tenancy.cache).
TWO_FACTOR_REQUIRED_CACHE_KEY = "workspace:two-factor-required"


def workspace_settings_get() -> WorkspaceSettings:
    """Return the active tenant's settings, creating the defaults on first use."""
    settings, _ = WorkspaceSettings.objects.get_or_create(singleton=True)
    return settings


def workspace_two_factor_is_required() -> bool:
    """Whether the active workspace lets only sessions verified by a second factor in.

    Asked on every request, so it is read from the cache (no query on a warm request);
    `workspace_two_factor_require` clears it when the owner changes it.
    """
    required = cache.get(TWO_FACTOR_REQUIRED_CACHE_KEY)
    if required is None:
        required = bool(
            WorkspaceSettings.objects.filter(singleton=True)
            .values_list("is_two_factor_required", flat=True)
            .first()
        )
        cache.set(
            TWO_FACTOR_REQUIRED_CACHE_KEY,
            required,
            timeout=django_settings.WORKSPACE_TWO_FACTOR_CACHE_SECONDS,
        )
    return bool(required)
