from __future__ import annotations

from tenant_apps.workspace.models import WorkspaceSettings


def workspace_settings_get() -> WorkspaceSettings:
    """Return the active tenant's settings, creating the defaults on first use."""
    settings, _ = WorkspaceSettings.objects.get_or_create(singleton=True)
    return settings
