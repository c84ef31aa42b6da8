"""The first answer to each POST sent with an Idempotency-Key, kept a day for its retries.

Rows live in the workspace's schema, like the keys and sessions they belong to: a key string
used in another workspace is another row in another table, never this one.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class IdempotencyRecord(models.Model):
    # Who sent it: `key:<API key id>` or `user:<person id>` (a browser session).
    credential = models.CharField(max_length=40)
    idempotency_key = models.CharField(max_length=255)
    # SHA-256 of the method, path and parsed body: a retry must be the same request.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    # The answer's JSON as text: jsonb refuses `\u0000`, which a body may echo back (a field
    # name sent with a NUL in it, quoted in a validation problem).
    body = models.TextField()
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "idempotency_key"], name="idempotency_key_once_per_credential"
            ),
            models.CheckConstraint(
                condition=models.Q(status_code__gte=200, status_code__lt=500),
                name="idempotency_stores_no_server_error",
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at")]

    def __str__(self) -> str:
        return f"{self.credential} {self.idempotency_key} → {self.status_code}"
