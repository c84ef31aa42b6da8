"""Who may do what with projects. Every signed-in member of the workspace may, for now;
roles (owner, admin, member) will narrow this here, in one place."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from shared_apps.accounts.models import User


def can(actor: User, action: str, target: object | None = None) -> bool:
    return bool(actor.is_authenticated and actor.is_active)


def require(actor: User, action: str, target: object | None = None) -> None:
    if not can(actor, action, target):
        raise PermissionDenied(action)
