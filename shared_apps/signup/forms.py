from __future__ import annotations

from typing import Any

from django import forms

from shared_apps.billing.models import Plan
from shared_apps.billing.selectors import plan_list
from shared_apps.billing.stripe_gateway import billing_enabled
from shared_apps.tenants.subdomains import MAX_LENGTH


class SignupForm(forms.Form):
    """Shapes only; the signup service is the authority on every rule."""

    name = forms.CharField(label="Company name", max_length=120)
    subdomain = forms.CharField(
        label="Subdomain",
        max_length=MAX_LENGTH + 10,  # room for stray spaces; the service trims and checks
        help_text="Letters, digits and single hyphens; your workspace's address.",
    )
    email = forms.EmailField(label="Your e-mail")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if billing_enabled():  # without Stripe keys every workspace is free: nothing to choose
            plans = plan_list()
            self.fields["plan"] = forms.SlugField(
                label="Plan",
                max_length=40,
                required=False,
                initial=next((plan.code for plan in plans if plan.is_default), ""),
                # A slug, not a choice: the service says whether the plan exists.
                widget=forms.RadioSelect(choices=[(plan.code, _label(plan)) for plan in plans]),
            )


def _label(plan: Plan) -> str:
    return f"{plan.name} · {plan.price_display if plan.is_paid else 'no charge'}"
