"""Invitations to join a workspace; the people themselves are accounts.User in this schema."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from shared_apps.accounts.models import User


class Invitation(models.Model):
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=User.Role.choices, default=User.Role.MEMBER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    # Revoked by a person, or replaced by a newer invitation for the same address.
    revoked_at = models.DateTimeField(null=True, blank=True)

    class QuerySet(models.QuerySet["Invitation"]):
        def live(self) -> models.QuerySet[Invitation]:
            """Invitations whose link still works: not accepted, revoked or expired."""
            return self.filter(
                accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
            )

    objects = QuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["owner", "admin", "member"]), name="invitation_role_known"
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation for {self.email} ({self.role})"

    @property
    def is_live(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )
