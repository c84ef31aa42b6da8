"""API keys: how machines call a workspace's API. Rows live in the workspace's schema, so a
key of one workspace sent to another workspace's host is simply unknown there."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenant_apps.members.policy import ApiKeyScope


class ApiKey(models.Model):
    # Defined with the policy, below this app: API views of members name scopes too.
    Scope = ApiKeyScope

    name = models.CharField(max_length=120)
    # Shown in lists and logs, and the lookup column: `tp_` plus 8 random characters.
    prefix = models.CharField(max_length=16, unique=True)
    # SHA-256 of the whole key (hex). The rest of the key is never stored.
    key_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=8, choices=Scope.choices))
    # A key acts as the person who made it: their role bounds what the key may do.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scopes__contained_by=["read", "write", "admin"]) & ~Q(scopes=[]),
                name="apikey_scopes_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def grants(self, scope: str) -> bool:
        """Whether the key may act with `scope`: admin includes write, write includes read."""
        order = [self.Scope.READ, self.Scope.WRITE, self.Scope.ADMIN]
        needed = order.index(self.Scope(scope))
        return any(order.index(self.Scope(held)) >= needed for held in self.scopes)
