"""Public schema: plans, each workspace's billing state, and the Stripe events received."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from shared_apps.tenants.models import Tenant

# Stripe's currencies without a minor unit: amounts are whole units.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)


class PlanQuerySet(models.QuerySet["Plan"]):
    def available(self) -> PlanQuerySet:
        return self.filter(is_active=True)


class Plan(models.Model):
    """What a workspace may use and what it costs; money in minor units (cents)."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    stripe_price_id = models.CharField(max_length=100, blank=True, default="")
    price_minor = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    interval = models.CharField(max_length=8, default="month")
    # None means unlimited.
    max_seats = models.PositiveIntegerField(null=True, blank=True)
    max_projects = models.PositiveIntegerField(null=True, blank=True)
    max_storage_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # The workspace's API budget, shared by all its keys and people (core.api.limits).
    api_requests_per_minute = models.PositiveIntegerField(null=True, blank=True, default=6000)
    # Background tasks of one workspace dispatched or running at once (tenancy.lanes): its
    # share of the workers when others wait too, never unlimited.
    max_concurrent_tasks = models.PositiveSmallIntegerField(default=2)
    trial_days = models.PositiveSmallIntegerField(default=0)
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "price_minor", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="plan_one_default"
            ),
            models.UniqueConstraint(
                fields=["stripe_price_id"],
                condition=~Q(stripe_price_id=""),
                name="plan_stripe_price_unique",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[a-z]{3}$"), name="plan_currency"
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent_tasks__gte=1), name="plan_concurrent_tasks_positive"
            ),
            # The default plan is what a workspace gets without paying.
            models.CheckConstraint(
                condition=Q(is_default=False) | Q(price_minor=0, stripe_price_id=""),
                name="plan_default_is_free",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def price_display(self) -> str:
        """The price for people, from integer minor units (never a float)."""
        if not self.price_minor:
            return "Free"
        if self.currency in ZERO_DECIMAL_CURRENCIES:
            amount = f"{self.price_minor:,}"
        else:
            amount = f"{self.price_minor // 100:,}.{self.price_minor % 100:02d}"
        return f"{amount} {self.currency.upper()} / {self.interval}"

    @property
    def is_paid(self) -> bool:
        return bool(self.stripe_price_id)

    def limit_for(self, resource: str) -> int | None:
        value: int | None = getattr(self, f"max_{resource}")
        return value


class SubscriptionStatus(models.TextChoices):
    """Stripe's subscription statuses, plus NONE for a workspace without one."""

    NONE = "", "No subscription"
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    UNPAID = "unpaid", "Unpaid"
    CANCELED = "canceled", "Canceled"
    PAUSED = "paused", "Paused"


class BillingAccount(models.Model):
    """A workspace's billing state, copied from its latest Stripe subscription.

    A workspace without a row is on the default (free) plan.
    """

    Status = SubscriptionStatus
    LIVE = frozenset({"trialing", "active", "past_due", "unpaid", "paused"})
    DELINQUENT = frozenset({"past_due", "unpaid"})
    HEALTHY = frozenset({"trialing", "active"})  # paid (or in trial): dunning is over

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="billing_account"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts")
    stripe_customer_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True, default="")
    subscription_status = models.CharField(
        max_length=20, choices=Status.choices, blank=True, default=Status.NONE
    )
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    past_due_since = models.DateTimeField(null=True, blank=True)
    grace_ends_at = models.DateTimeField(null=True, blank=True)
    is_suspended_by_billing = models.BooleanField(default=False)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(subscription_status__in=SubscriptionStatus.values),
                name="billing_subscription_status_known",
            ),
            models.CheckConstraint(
                condition=Q(past_due_since__isnull=True) | Q(grace_ends_at__isnull=False),
                name="billing_past_due_has_grace",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.plan_id} ({self.subscription_status or 'none'})"

    @property
    def has_live_subscription(self) -> bool:
        return self.subscription_status in self.LIVE

    @property
    def is_past_due(self) -> bool:
        return self.past_due_since is not None


class StripeEvent(models.Model):
    """One Stripe event as delivered; processed_at is set in the transaction of its effect."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    deliveries = models.PositiveIntegerField(default=1)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="stripeevent_unprocessed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
