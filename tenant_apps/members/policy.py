"""Who may do what inside a workspace: the one place every view, admin and API asks.

Roles: an owner may do everything; an admin runs the workspace but cannot touch owners;
a member works in projects but does not manage them or the people in the workspace.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import TextChoices

from shared_apps.accounts.models import User

Role = User.Role


class ApiKeyScope(TextChoices):
    """What an API key may reach (`ApiKey.Scope`): admin includes write, write includes read.

    The vocabulary lives here, below the apikeys app, so that API views of any workspace app
    (members' own included) can name the scope they need without importing apikeys.
    """

    READ = "read", "Read"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"


MEMBER_ACTIONS = frozenset(
    {
        "project.view",
        "project.export",
        "task.view",
        "task.create",
        "task.update",
        "attachment.view",
        "attachment.create",
        "member.view",
    }
)
ADMIN_ACTIONS = MEMBER_ACTIONS | {
    "project.create",
    "project.update",
    "project.archive",
    "member.invite",
    "invitation.resend",
    "invitation.revoke",
    "member.change_role",
    "member.remove",
    # Whether someone has a second factor: for those who run the workspace, not for everyone
    # (it tells an attacker whose password alone would do).
    "member.view_second_factor",
    "admin.access",
    "apikey.manage",
}
OWNER_ACTIONS = ADMIN_ACTIONS | {
    "owner.manage",
    "workspace.settings",
    # Another person's second factor: only owners may take it away (then they enrol again).
    "member.reset_second_factor",
    # Webhooks push the workspace's events (people's addresses and roles among them) to
    # URLs outside it, continuously: an owner's decision, like the workspace's settings.
    "webhook.manage",
}

ACTIONS_BY_ROLE = {
    Role.MEMBER: MEMBER_ACTIONS,
    Role.ADMIN: ADMIN_ACTIONS,
    Role.OWNER: OWNER_ACTIONS,
}


def can(actor: User, action: str, target: object | None = None) -> bool:
    """Whether `actor` may perform `action` (on `target`) in the active workspace."""
    if not (actor.is_authenticated and actor.is_active):
        return False
    if action not in ACTIONS_BY_ROLE.get(Role(actor.role), frozenset()):
        return False
    # Only owners act on owners: an admin can neither demote nor remove one, nor touch an
    # invitation that would make someone owner.
    if _is_owner_target(target) and action.startswith(("member.", "invitation.")):
        return actor.role == Role.OWNER
    return True


def _is_owner_target(target: object | None) -> bool:
    return getattr(target, "role", None) == Role.OWNER


def require(actor: User, action: str, target: object | None = None) -> None:
    """Raise PermissionDenied unless `actor` may perform `action`."""
    if not can(actor, action, target):
        raise PermissionDenied(f"not allowed: {action}")


def roles_assignable_by(actor: User) -> list[str]:
    if actor.role == Role.OWNER:
        return [Role.OWNER, Role.ADMIN, Role.MEMBER]
    if actor.role == Role.ADMIN:
        return [Role.ADMIN, Role.MEMBER]
    return []


def api_key_scopes_grantable_by(actor: User) -> list[str]:
    """API key scopes `actor` may put on a new key: never more power than their own role.

    The `admin` scope reaches everything an owner may do, so only owners grant it.
    """
    if actor.role == Role.OWNER:
        return [ApiKeyScope.READ, ApiKeyScope.WRITE, ApiKeyScope.ADMIN]
    if actor.role == Role.ADMIN:
        return [ApiKeyScope.READ, ApiKeyScope.WRITE]
    return []
