"""Self-service signup: a workspace ready at once, and the owner signed in to it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from shared_apps.accounts.handoff import handoff_issue
from shared_apps.billing.selectors import checkout_path, plan_for_signup
from shared_apps.fleet.creation import TenantCreated, tenant_create
from shared_apps.mail.services import mail_send
from shared_apps.tenants.addresses import LinkOrigin, workspace_url


@dataclass(frozen=True)
class SignupResult:
    created: TenantCreated
    url: str
    handoff_url: str
    # Where the owner continues once signed in: home, or the checkout page of a paid plan.
    next_url: str


def signup_complete(
    *,
    name: str,
    subdomain: str,
    email: str,
    password: str,
    origin: LinkOrigin,
    plan: str = "",
) -> SignupResult:
    """Create the workspace and its owner; return where the owner's browser goes next.

    A paid `plan` sends the owner on to the workspace's checkout page; Stripe is called only
    from there, so a Stripe outage never stops a signup. Not one transaction: tenant_create
    is, and it audits its refusals, which an outer transaction would roll back.

    Raises:
        The AppErrors of tenant_create (subdomain_taken, subdomain_invalid, ...);
        PlanNotFoundError (field `plan`) before anything is created.
    """
    paid_plan = plan_for_signup(code=plan.strip())
    created = tenant_create(
        name=name, subdomain=subdomain, owner_email=email, owner_password=password
    )
    url = workspace_url(created.tenant.subdomain, origin=origin)
    token = handoff_issue(tenant_id=created.tenant.id, user_id=created.owner.pk)
    handoff_query = {"token": token}
    next_url = url
    if paid_plan is not None:
        handoff_query["next"] = checkout_path(plan_code=paid_plan.code)
        next_url = workspace_url(created.tenant.subdomain, handoff_query["next"], origin=origin)
    handoff_url = workspace_url(
        created.tenant.subdomain, f"auth/handoff/?{urlencode(handoff_query)}", origin=origin
    )
    mail_send(
        to=[created.owner.email],
        template="signup/mail/welcome",
        context={"workspace": created.tenant.name, "url": url, "email": created.owner.email},
    )
    return SignupResult(created=created, url=url, handoff_url=handoff_url, next_url=next_url)
