"""Reads of a workspace's people and open invitations."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, QuerySet, Value
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from shared_apps.accounts.models import User
from shared_apps.billing.limits import plan_limit
from tenant_apps.members import policy
from tenant_apps.members.errors import InvitationNotFoundError, MemberNotFoundError
from tenant_apps.members.models import Invitation
from tenant_apps.members.services import seats_taken


@dataclass(frozen=True)
class Seats:
    taken: int
    limit: int | None


def _people(actor: User) -> QuerySet[User]:
    """Active people, each with `has_two_factor`: whether a confirmed device (authenticator
    app or backup codes, as `django_otp.user_has_device` counts them) signs them in, or
    None for an actor who may not know it."""
    if not policy.can(actor, "member.view_second_factor"):
        unknown = Value(None, output_field=BooleanField(null=True))
        return User.objects.filter(is_active=True).annotate(has_two_factor=unknown)
    totp = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    backup_codes = StaticDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    either = ExpressionWrapper(Exists(totp) | Exists(backup_codes), output_field=BooleanField())
    return User.objects.filter(is_active=True).annotate(has_two_factor=either)


def member_list(*, actor: User, role: str | None = None) -> QuerySet[User]:
    """Return the workspace's active people, by e-mail, in one query; of one role when given."""
    policy.require(actor, "member.view")
    people = _people(actor)
    if role is not None:
        people = people.filter(role=role)
    return people.order_by("email")


def member_get(*, actor: User, member_id: int) -> User:
    """Return one active person of the workspace.

    Raises:
        MemberNotFoundError: no such active person here.
    """
    policy.require(actor, "member.view")
    member = _people(actor).filter(pk=member_id).first()
    if member is None:
        raise MemberNotFoundError("There is no such member in this workspace.")
    return member


def invitation_list_live(*, actor: User) -> QuerySet[Invitation]:
    """Return the invitations whose links still work, newest first (for those who invite)."""
    policy.require(actor, "member.invite")
    return Invitation.objects.live().select_related("invited_by").order_by("-created_at")


def invitation_get_live(*, actor: User, invitation_id: int) -> Invitation:
    """Return one live invitation.

    Raises:
        InvitationNotFoundError: no such live invitation here (accepted, withdrawn, expired,
            or another workspace's).
    """
    invitation = invitation_list_live(actor=actor).filter(pk=invitation_id).first()
    if invitation is None:
        raise InvitationNotFoundError("There is no such open invitation in this workspace.")
    return invitation


def seats_overview() -> Seats:
    """Seats in use (people and live invitations, each once) and the plan's limit."""
    return Seats(taken=seats_taken(), limit=plan_limit("seats"))
