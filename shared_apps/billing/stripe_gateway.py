"""The only module that imports `stripe`: every call to Stripe goes through here.

Functions return plain dicts (Stripe's JSON), never Stripe objects, so nothing else in the
platform depends on the library's types. Network trouble becomes StripeUnavailableError
(retry later); a refused request becomes StripeRequestError (a bug; fail loudly).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings

from shared_apps.billing.errors import (
    BillingNotConfiguredError,
    SignatureInvalidError,
    StripeRequestError,
    StripeUnavailableError,
)

# Stripe's own retries (with its idempotency keys) cover short network blips.
NETWORK_RETRIES = 2
# A request to Stripe gives up after this many seconds (the library's default is 80): a
# page waiting on Stripe holds a web worker, never a database lock (see dunning.py).
STRIPE_TIMEOUT_SECONDS = 10


def billing_enabled() -> bool:
    """Whether Stripe keys are configured; without them no Stripe call is ever made."""
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


@lru_cache(maxsize=4)
def _client(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=NETWORK_RETRIES,
        http_client=stripe.new_default_http_client(timeout=STRIPE_TIMEOUT_SECONDS),
    )


def object_id(value: Any) -> str:
    """Return the id in a field Stripe sends either as an id or as the expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def client() -> stripe.StripeClient:
    if not billing_enabled():
        raise BillingNotConfiguredError("Billing is not configured on this platform.")
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        raise StripeUnavailableError(str(error)) from error
    except stripe.APIError as error:  # 5xx
        raise StripeUnavailableError(str(error)) from error
    except stripe.StripeError as error:
        raise StripeRequestError(str(error), request_id=error.request_id) from error


def _plain(obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return result


def _call(make: Callable[[stripe.StripeClient], Any]) -> dict[str, Any]:
    with _translated():
        return _plain(make(client()))


def customer_create(*, tenant_id: str, email: str, name: str) -> dict[str, Any]:
    """Create the workspace's Stripe customer; asked twice with the same details, one customer.

    Stripe refuses a reused idempotency key whose parameters differ (another owner's e-mail,
    a renamed workspace), so the key covers the parameters as well as the workspace.
    """
    params: dict[str, Any] = {"email": email, "name": name, "metadata": {"tenant_id": tenant_id}}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return _call(
        lambda c: c.v1.customers.create(
            params,  # type: ignore[arg-type]
            options={"idempotency_key": f"customer-{tenant_id}-{digest}"},
        )
    )


def checkout_session_create(
    *,
    tenant_id: str,
    customer_id: str,
    price_id: str,
    trial_days: int,
    success_url: str,
    cancel_url: str,
) -> dict[str, Any]:
    """Open a Checkout session for a subscription to one price."""
    subscription_data: dict[str, Any] = {"metadata": {"tenant_id": tenant_id}}
    if trial_days:
        subscription_data["trial_period_days"] = trial_days
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": tenant_id,
        "line_items": [{"price": price_id, "quantity": 1}],
        "subscription_data": subscription_data,
        "metadata": {"tenant_id": tenant_id},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    return _call(lambda c: c.v1.checkout.sessions.create(params))  # type: ignore[arg-type]


def portal_session_create(*, customer_id: str, return_url: str) -> dict[str, Any]:
    """Open the customer portal (change plan, update card, cancel)."""
    params: dict[str, Any] = {"customer": customer_id, "return_url": return_url}
    return _call(lambda c: c.v1.billing_portal.sessions.create(params))  # type: ignore[arg-type]


def subscriptions_for_customer(*, customer_id: str) -> list[dict[str, Any]]:
    """Return every subscription of the customer as Stripe has it now, newest first."""
    params: dict[str, Any] = {"customer": customer_id, "status": "all", "limit": 100}
    with _translated():
        page = client().v1.subscriptions.list(params)  # type: ignore[arg-type]
        found = [_plain(sub) for sub in page.auto_paging_iter()]
    return sorted(found, key=lambda sub: int(sub.get("created") or 0), reverse=True)


def _timestamp_fresh(signature: str | None) -> bool:
    """Whether the header's `t=` lies within Stripe's tolerance of now, in either direction.

    The stripe library refuses old timestamps only; a clock far ahead would let a captured
    delivery be replayed for longer.
    """
    for part in (signature or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            return abs(time.time() - int(value)) <= stripe.Webhook.DEFAULT_TOLERANCE
    return False


def event_verify(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Check a webhook body against its Stripe-Signature header and return the event.

    Raises:
        SignatureInvalidError: missing, stale or wrong signature, or not JSON.
    """
    if not _timestamp_fresh(signature):
        raise SignatureInvalidError("The Stripe signature is missing, stale or from the future.")
    try:
        event: Any = json.loads(payload)
        if not isinstance(event, dict):
            raise SignatureInvalidError("The body is not a Stripe event.")
        stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    except (stripe.SignatureVerificationError, ValueError, TypeError, AttributeError, KeyError):
        raise SignatureInvalidError("The Stripe signature is missing or wrong.") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise SignatureInvalidError("The body is not a Stripe event.")
    return event
