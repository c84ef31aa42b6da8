"""Who did what to which tenant, when, and how it ended (public schema, append-only)."""

from __future__ import annotations

from django.db import models


class AuditRecord(models.Model):
    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    actor = models.CharField(max_length=254)  # "cli:root@host", "admin:staff@example.com"
    action = models.CharField(max_length=64)  # "tenant.suspend"
    tenant_id = models.UUIDField(null=True, blank=True, db_index=True)
    subdomain = models.CharField(max_length=63, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.subdomain}"
