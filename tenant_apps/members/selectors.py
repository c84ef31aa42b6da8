"""Reads of a workspace's people and open invitations."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from shared_apps.accounts.models import User
from shared_apps.billing.limits import plan_limit
from tenant_apps.members import policy
from tenant_apps.members.models import Invitation
from tenant_apps.members.services import seats_taken


@dataclass(frozen=True)
class Seats:
    taken: int
    limit: int | None


def member_list(*, actor: User) -> QuerySet[User]:
    """Return the workspace's active people, by e-mail."""
    policy.require(actor, "member.view")
    return User.objects.filter(is_active=True).order_by("email")


def member_get(*, actor: User, member_id: int) -> User:
    """Return one active person of the workspace.

    Raises:
        Http404: no such active person here.
    """
    policy.require(actor, "member.view")
    member = User.objects.filter(pk=member_id, is_active=True).first()
    if member is None:
        raise Http404("There is no such member in this workspace.")
    return member


def invitation_list_live(*, actor: User) -> QuerySet[Invitation]:
    """Return the invitations whose links still work, newest first (for those who invite)."""
    policy.require(actor, "member.invite")
    return Invitation.objects.live().select_related("invited_by").order_by("-created_at")


def invitation_get_live(*, actor: User, invitation_id: int) -> Invitation:
    """Return one live invitation.

    Raises:
        Http404: no such live invitation here.
    """
    invitation = invitation_list_live(actor=actor).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("There is no such open invitation in this workspace.")
    return invitation


def seats_overview() -> Seats:
    """Seats in use (people and live invitations, each once) and the plan's limit."""
    return Seats(taken=seats_taken(), limit=plan_limit("seats"))
