"""Who may manage a workspace's billing: its owners only (as in tenant_apps.members.policy)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from shared_apps.accounts.models import User

OWNER_ACTIONS = frozenset({"billing.view", "billing.manage"})


def can(actor: User, action: str) -> bool:
    """Whether `actor` may perform the billing `action` in the active workspace."""
    if not (actor.is_authenticated and actor.is_active):
        return False
    return action in OWNER_ACTIONS and actor.role == User.Role.OWNER


def require(actor: User, action: str) -> None:
    """Raise PermissionDenied unless `actor` may perform `action`."""
    if not can(actor, action):
        raise PermissionDenied(f"not allowed: {action}")
