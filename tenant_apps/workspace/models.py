"""Workspace-wide preferences, one row per tenant schema."""

from __future__ import annotations

import zoneinfo

from django.db import models


class WorkspaceSettings(models.Model):
    """The tenant's own preferences; exists only in tenant schemas."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    timezone = models.CharField(max_length=64, default="UTC")
    # Everyone signed in must have passed a second factor (owners set it; the workspace
    # middleware enforces it).
    is_two_factor_required = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "workspace settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(singleton=True), name="workspace_settings_singleton"
            ),
        ]

    def __str__(self) -> str:
        return f"Workspace settings ({self.timezone})"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)
