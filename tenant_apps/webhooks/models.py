"""Webhook endpoints and their deliveries: rows in the workspace's own schema, so one
workspace's endpoints never hear another's events and its log shows only its own."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenant_apps.events.catalogue import EventType


class Endpoint(models.Model):
    class DisabledReason(models.TextChoices):
        BY_OWNER = "by_owner", "Disabled by an owner"
        FAILING = "failing", "Disabled after failing repeatedly"
        GONE = "gone", "Disabled: the receiver answered 410 Gone"

    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=120, blank=True)
    events = ArrayField(models.CharField(max_length=40, choices=EventType.choices))
    # `whsec_` + base64: kept in clear because the worker signs with it (docs/security.md).
    secret = models.CharField(max_length=80)
    # After a rotation the old secret signs too, for a while, so receivers can switch over.
    previous_secret = models.CharField(max_length=80, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=16, choices=DisabledReason.choices, blank=True)
    # Failed attempts in a row (any delivery; a success starts again) and since when.
    failure_count = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(events__contained_by=EventType.values) & ~Q(events=[]),
                name="webhook_endpoint_events_known",
            ),
            models.CheckConstraint(
                condition=Q(url__startswith="https://") | Q(url__startswith="http://"),
                name="webhook_endpoint_url_http",
            ),
            models.CheckConstraint(
                condition=Q(disabled_at__isnull=True, disabled_reason="")
                | (Q(disabled_at__isnull=False) & ~Q(disabled_reason="")),
                name="webhook_endpoint_disabled_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.url

    @property
    def is_enabled(self) -> bool:
        return self.disabled_at is None

    def signing_secrets(self) -> list[str]:
        """The secrets each delivery is signed with now: the current one, and the previous
        one until its overlap ends."""
        live = [self.secret]
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and expires > timezone.now():
            live.append(self.previous_secret)
        return live


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The event's id: the `webhook-id` header, the same on retries and when sent again.
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    # The exact bytes signed and sent, kept so a retry or a resend is byte for byte the same.
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due (pending only); the sweeper re-queues one long overdue.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # "Send again" makes a new delivery of the same event, pointing at the one it repeats.
    resent_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            ),
            models.Index(fields=["created_at"], name="webhook_delivery_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed"]),
                name="webhook_delivery_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.endpoint_id} ({self.status})"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.event_id.hex}"
