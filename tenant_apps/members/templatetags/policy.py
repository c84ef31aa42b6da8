"""The policy in templates: a control is shown only to those the service would let use it.

{% load policy %}
{% if user|may:"project.create" %}…{% endif %}
{% may user "member.remove" member as can_remove %}
"""

from __future__ import annotations

from django import template

from shared_apps.accounts.models import User
from shared_apps.billing import policy as billing_policy
from tenant_apps.members import policy

register = template.Library()


def _can(actor: User, action: str, target: object | None = None) -> bool:
    if not getattr(actor, "is_authenticated", False):
        return False
    if action.startswith("billing."):
        return billing_policy.can(actor, action)
    return policy.can(actor, action, target)


@register.filter(name="may")
def may_filter(actor: User, action: str) -> bool:
    """`user|may:"project.create"`: whether the actor may perform the action."""
    return _can(actor, action)


@register.simple_tag(name="may")
def may_tag(actor: User, action: str, target: object | None = None) -> bool:
    """`{% may user "member.remove" member as allowed %}`: the same, on a target."""
    return _can(actor, action, target)
