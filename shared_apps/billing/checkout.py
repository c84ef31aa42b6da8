"""Paying for a plan: the Stripe Checkout session and the customer portal.

Nothing changes locally when a checkout starts; the subscription arrives through Stripe's
webhook events (see webhooks.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from shared_apps.accounts.models import User
from shared_apps.billing import policy
from shared_apps.billing import stripe_gateway as gateway
from shared_apps.billing.accounts import billing_account_lock
from shared_apps.billing.errors import (
    BillingNotConfiguredError,
    BillingRequestFailedError,
    BillingUnavailableError,
    NoBillingAccountError,
    StripeRequestError,
    StripeUnavailableError,
    SubscriptionExistsError,
)
from shared_apps.billing.models import BillingAccount
from shared_apps.billing.selectors import checkout_plan_get
from shared_apps.tenants.models import Tenant
from tenancy import public_context, require_tenant

logger = logging.getLogger(__name__)


def _subscription_absent_require(account: BillingAccount) -> None:
    if account.subscription_status in BillingAccount.LIVE:
        raise SubscriptionExistsError(
            "This workspace already has a subscription; change it with Manage billing."
        )


def _customer_ensure(*, tenant_id: uuid.UUID, email: str, name: str) -> str:
    """Return the workspace's Stripe customer id, creating the customer the first time.

    Stored in its own transaction before the Checkout Session is asked for: a session that
    then fails must not make us forget a customer that exists in Stripe. Stripe is called
    with no lock held; its idempotency key gives two concurrent first checkouts one
    customer, and the first to store it wins.
    """
    with transaction.atomic():
        account = billing_account_lock(tenant=Tenant.objects.get(pk=tenant_id))
        _subscription_absent_require(account)
        if account.stripe_customer_id:
            return str(account.stripe_customer_id)
    customer = gateway.customer_create(tenant_id=str(tenant_id), email=email, name=name)
    with transaction.atomic():
        account = billing_account_lock(tenant=Tenant.objects.get(pk=tenant_id))
        if not account.stripe_customer_id:
            account.stripe_customer_id = customer["id"]
            account.save(update_fields=["stripe_customer_id", "updated_at"])
            logger.info("stripe customer created", extra={"customer_id": customer["id"]})
        return str(account.stripe_customer_id)


def billing_checkout_start(*, actor: User, plan_code: str, site_url: str) -> str:
    """Return the Stripe Checkout address where the owner subscribes the workspace to a plan.

    `site_url` is the workspace's own address (ending in "/"); Stripe returns there.

    Raises:
        PermissionDenied, BillingNotConfiguredError, PlanNotFoundError, SubscriptionExistsError,
        BillingUnavailableError (Stripe unreachable; nothing charged, the owner may retry),
        BillingRequestFailedError (Stripe refused the request).
    """
    plan = checkout_plan_get(actor=actor, plan_code=plan_code)
    ref = require_tenant()
    with _stripe_reachable(), public_context():
        customer_id = _customer_ensure(tenant_id=ref.id, email=actor.email, name=ref.name)
        # No lock while Stripe answers: a session only offers to pay; a second one opened
        # by a double click is never paid twice (the subscription arrives by webhook).
        session = gateway.checkout_session_create(
            tenant_id=str(ref.id),
            customer_id=customer_id,
            price_id=plan.stripe_price_id,
            trial_days=plan.trial_days,
            success_url=f"{site_url}billing/?checkout=success",
            cancel_url=f"{site_url}billing/?checkout=cancelled",
        )
    logger.info("checkout started", extra={"plan": plan.code, "session_id": session.get("id")})
    return str(session["url"])


def billing_portal_open(*, actor: User, site_url: str) -> str:
    """Return a Stripe customer portal address (change plan, update the card, cancel).

    Raises:
        PermissionDenied, BillingNotConfiguredError, NoBillingAccountError,
        BillingUnavailableError (Stripe unreachable; the owner may retry),
        BillingRequestFailedError (Stripe refused the request).
    """
    policy.require(actor, "billing.manage")
    if not gateway.billing_enabled():
        raise BillingNotConfiguredError("Billing is not configured; every workspace is free.")
    account = BillingAccount.objects.filter(tenant_id=require_tenant().id).first()
    if account is None or not account.stripe_customer_id:
        raise NoBillingAccountError("Choose a paid plan first; there is nothing to manage yet.")
    with _stripe_reachable():
        session = gateway.portal_session_create(
            customer_id=account.stripe_customer_id, return_url=f"{site_url}billing/"
        )
    return str(session["url"])


@contextmanager
def _stripe_reachable() -> Iterator[None]:
    """Turn Stripe trouble into a message for the owner (the tasks retry on their own instead).

    Down: retry in a minute. Refused: a bug or a misconfiguration on our side, logged with
    Stripe's request id so support can find it in Stripe's logs.
    """
    try:
        yield
    except StripeUnavailableError as error:
        logger.warning("stripe unreachable", extra={"error": str(error)[:200]})
        raise BillingUnavailableError(
            "Stripe, our payment provider, could not be reached; nothing was charged. "
            "Please try again in a minute."
        ) from error
    except StripeRequestError as error:
        logger.error(
            "stripe refused a request",
            extra={"stripe_request_id": error.request_id, "error": str(error)[:500]},
        )
        reference = f" (reference {error.request_id})" if error.request_id else ""
        raise BillingRequestFailedError(
            "Stripe, our payment provider, refused this request; nothing was charged. "
            f"Please contact support{reference}.",
            stripe_request_id=error.request_id,
        ) from error
