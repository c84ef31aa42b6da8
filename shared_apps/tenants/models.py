"""Public schema: who the tenants are and which hosts lead to them."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import models
from django.db.models import Q
from django.db.models.functions import Length, Lower
from django_tenants.models import DomainMixin, TenantMixin

from shared_apps.tenants.subdomains import MAX_LENGTH, MIN_LENGTH

models.CharField.register_lookup(Lower)
models.CharField.register_lookup(Length)


class TenantQuerySet(models.QuerySet["Tenant"]):
    def active(self) -> TenantQuerySet:
        return self.filter(status=Tenant.Status.ACTIVE)


class TenantStatus(models.TextChoices):
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    ARCHIVED = "archived", "Archived"


class QuarantineCause(models.TextChoices):
    # The schema no longer matches its migrations (`tenants verify`): a table PostgreSQL
    # would resolve to public's. Served as "unavailable".
    SCHEMA_DRIFT = "schema_drift", "Schema drift"
    # The release's migrations failed on this tenant (`tenants migrate`): its schema is
    # whole but behind the code. Served as "maintenance" until a run migrates it.
    MIGRATION_FAILED = "migration_failed", "Migration failed"


class TenantSuspendedFor(models.TextChoices):
    NONE = "", "Not suspended"
    OPERATOR = "operator", "An operator's decision"
    # Billing's dunning suspended it: its owners may still sign in to pay, nothing else.
    NON_PAYMENT = "non_payment", "Non-payment"


class Tenant(TenantMixin):
    """A customer workspace, with its own PostgreSQL schema `t_<id hex>`."""

    Status = TenantStatus
    QuarantineCause = QuarantineCause
    SuspendedFor = TenantSuspendedFor

    # Annotated by hand: the django-tenants base class is untyped.
    id: models.UUIDField[uuid.UUID, uuid.UUID] = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False
    )
    name: models.CharField[str, str] = models.CharField(max_length=120)
    subdomain: models.CharField[str, str] = models.CharField(max_length=MAX_LENGTH)
    status: models.CharField[str, str] = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PROVISIONING
    )
    # Quarantine is not a status: it says the schema cannot serve the code (a table gone,
    # which PostgreSQL would resolve to public's, or a release that failed to migrate it),
    # whatever the operator or billing decided. A suspended tenant stays suspended through
    # it; `tenants verify` and `tenants migrate` set and clear it, nothing else
    # (shared_apps.fleet.verify, shared_apps.fleet.quarantine).
    quarantined_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    quarantine_reason: models.TextField[str, str] = models.TextField(blank=True)
    quarantine_cause: models.CharField[str, str] = models.CharField(
        max_length=20, choices=QuarantineCause.choices, blank=True
    )
    # Why it is suspended; read only while the status says so (an archive keeps it for the
    # restore that brings the suspended tenant back). Resuming clears it.
    suspended_for: models.CharField[str, str] = models.CharField(
        max_length=16, choices=SuspendedFor.choices, default="", blank=True
    )
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)
    updated_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now=True)
    schema_name: str

    # The provisioning service owns schema creation and removal, inside its transaction.
    auto_create_schema = False
    auto_drop_schema = False

    objects = TenantQuerySet.as_manager()

    def _check_schema_name_is_unique(self) -> None:
        """Nothing to check: the shape constraint allows only `t_` and lower-case hex, so
        no two names can differ only in case. django-tenants' own check compares
        `upper(schema_name)`, which no index serves: a scan of every tenant on each signup."""

    class Meta:
        ordering = ["subdomain"]
        constraints = [
            models.UniqueConstraint(Lower("subdomain"), name="tenant_subdomain_ci_unique"),
            models.CheckConstraint(
                condition=Q(subdomain__regex=r"^[a-z][a-z0-9-]*[a-z0-9]$")
                & ~Q(subdomain__contains="--")
                & Q(subdomain__length__gte=MIN_LENGTH),
                name="tenant_subdomain_shape",
            ),
            # Schema names reach SQL; only the platform's own pattern may exist.
            models.CheckConstraint(
                condition=Q(schema_name__regex=r"^t_[0-9a-f]{32}$"), name="tenant_schema_name_shape"
            ),
            models.CheckConstraint(
                condition=Q(status__in=TenantStatus.values),
                name="tenant_status_known",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="tenant_name_not_blank"),
            models.CheckConstraint(
                condition=Q(suspended_for__in=TenantSuspendedFor.values),
                name="tenant_suspended_for_known",
            ),
            models.CheckConstraint(
                condition=Q(quarantined_at__isnull=False) | Q(quarantine_reason=""),
                name="tenant_quarantine_reason_only_when_quarantined",
            ),
            # A quarantine always says why; a tenant served normally has no cause.
            models.CheckConstraint(
                condition=(Q(quarantined_at__isnull=True) & Q(quarantine_cause=""))
                | (
                    Q(quarantined_at__isnull=False) & Q(quarantine_cause__in=QuarantineCause.values)
                ),
                name="tenant_quarantine_cause_only_when_quarantined",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.subdomain})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def is_quarantined(self) -> bool:
        return self.quarantined_at is not None

    @property
    def is_in_maintenance(self) -> bool:
        """Quarantined because the release's migrations failed on it (not schema drift)."""
        return self.is_quarantined and self.quarantine_cause == QuarantineCause.MIGRATION_FAILED

    @property
    def is_suspended_for_non_payment(self) -> bool:
        return (
            self.status == self.Status.SUSPENDED
            and self.suspended_for == self.SuspendedFor.NON_PAYMENT
        )


class Domain(DomainMixin):
    """A host name that leads to a tenant; one of a tenant's domains is primary."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(is_primary=True),
                name="domain_one_primary_per_tenant",
            ),
            models.CheckConstraint(condition=Q(domain=Lower("domain")), name="domain_lower_case"),
        ]

    def __str__(self) -> str:
        return self.domain


class SchemaTemplate(models.Model):
    """The SQL that creates a tenant schema at a given migration state (see provisioning)."""

    name = models.CharField(max_length=40, unique=True)
    migration_state = models.CharField(max_length=64)
    sql = models.TextField()
    # The template schema's catalog (tables, columns, indexes, constraints, sequences, ...;
    # shared_apps.fleet.catalog), read when it was built: what every tenant at
    # `migration_state` must have (`tenants verify`, fast archives).
    catalog = models.JSONField(default=dict)
    refreshed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.migration_state[:12]}"


class PooledSchema(models.Model):
    """A tenant schema made ahead of time from the template, waiting for a signup.

    Its id becomes the new tenant's id, so its schema `t_<id hex>` needs no renaming; the
    claim deletes this row inside the signup transaction, and a rollback puts it back.
    """

    id = models.UUIDField(primary_key=True)
    migration_state = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"pooled t_{self.id.hex}"


class TenantMigrationState(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class TenantMigration(models.Model):
    """Where a tenant's schema stands against the migrations on disk (`tenants migrate`).

    `migration_state` is the fingerprint of the tenant migrations its schema was last
    brought to; tenants whose fingerprint matches the one on disk are skipped with a single
    query. Written in the same transaction as the tenant's migration, so it cannot lie.
    """

    State = TenantMigrationState

    tenant = models.OneToOneField(
        Tenant, primary_key=True, on_delete=models.CASCADE, related_name="migration"
    )
    migration_state = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failed_attempts = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.state} @ {self.migration_state[:12]}"


class TenantArchiveFormat(models.TextChoices):
    # The provisioning template's DDL and each table's COPY data (shared_apps.fleet.snapshot).
    TEMPLATE_COPY = "template_copy", "Template DDL and COPY data"
    # pg_dump's custom format of the schema: for a schema that drifted from its template.
    PG_DUMP = "pg_dump", "pg_dump custom format"


class TenantArchive(models.Model):
    """A dump of an archived tenant's schema, kept in storage under the tenant's prefix."""

    Format = TenantArchiveFormat

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="archives")
    storage_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    # Archives made before the fast format existed are all pg_dump's.
    format = models.CharField(
        max_length=16, choices=TenantArchiveFormat.choices, default=TenantArchiveFormat.PG_DUMP
    )
    migration_state = models.CharField(max_length=64, blank=True)
    # What restore puts back: a suspended tenant (by an operator, or by billing) stays so.
    previous_status = models.CharField(
        max_length=16, choices=TenantStatus.choices, default=TenantStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.storage_name
