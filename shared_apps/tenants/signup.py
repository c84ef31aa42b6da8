"""Self-service signup: a workspace ready at once, and the owner signed in to it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from shared_apps.accounts.handoff import handoff_issue
from shared_apps.billing.selectors import checkout_path, plan_for_signup
from shared_apps.fleet.creation import TenantCreated, tenant_create

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignupResult:
    created: TenantCreated
    url: str
    handoff_url: str
    # Where the owner continues once signed in: home, or the checkout page of a paid plan.
    next_url: str


def workspace_url(subdomain: str, *, scheme: str, port: str | None) -> str:
    """Return the workspace's address, keeping the scheme and a non-default port of the request."""
    host = f"{subdomain}.{settings.ROOT_DOMAIN}"
    if port and port not in ("80", "443"):
        host = f"{host}:{port}"
    return f"{scheme}://{host}/"


@transaction.atomic
def signup_complete(
    *, name: str, subdomain: str, email: str, password: str, scheme: str, port: str | None,
    plan: str = "",
) -> SignupResult:  # fmt: skip
    """Create the workspace and its owner; return where the owner's browser goes next.

    A paid `plan` sends the owner on to the workspace's checkout page; Stripe is called only
    from there, so a Stripe outage never stops a signup.

    Raises:
        The AppErrors of tenant_create (subdomain_taken, subdomain_invalid, ...);
        PlanNotFoundError (field `plan`) before anything is created.
    """
    paid_plan = plan_for_signup(code=plan.strip())
    created = tenant_create(
        name=name, subdomain=subdomain, owner_email=email, owner_password=password
    )
    url = workspace_url(created.tenant.subdomain, scheme=scheme, port=port)
    token = handoff_issue(tenant_id=created.tenant.id, user_id=created.owner.pk)
    handoff_query = {"token": token}
    next_url = url
    if paid_plan is not None:
        handoff_query["next"] = checkout_path(plan_code=paid_plan.code)
        next_url = f"{url.rstrip('/')}{handoff_query['next']}"
    handoff_url = f"{url}auth/handoff/?{urlencode(handoff_query)}"
    transaction.on_commit(
        lambda: welcome_email_send(email=created.owner.email, name=created.tenant.name, url=url)
    )
    return SignupResult(created=created, url=url, handoff_url=handoff_url, next_url=next_url)


def welcome_email_send(*, email: str, name: str, url: str) -> None:
    """Tell the new owner where their workspace lives. A mail failure never undoes a signup."""
    try:
        send_mail(
            subject=f"Welcome to {name}",
            message=(
                f"Your workspace {name} is ready at {url}\n\n"
                f"Sign in there with {email} and the password you chose.\n"
            ),
            from_email=None,
            recipient_list=[email],
        )
    except Exception:
        logger.exception("welcome e-mail failed", extra={"email_domain": email.split("@")[-1]})
