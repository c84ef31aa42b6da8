"""Changing who belongs to a workspace and what they may do."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode

from django.core import signing
from django.db import transaction
from django.utils import timezone

from core.text import single_line
from shared_apps.accounts.models import User
from shared_apps.accounts.rules import email_clean, password_check
from shared_apps.audit.services import audited
from shared_apps.billing.limits import plan_limit_require
from shared_apps.mail.services import mail_send
from shared_apps.tenants.addresses import LinkOrigin, workspace_url
from tenancy import require_tenant
from tenant_apps.events.catalogue import EventType
from tenant_apps.events.services import event_emit, timestamp_iso
from tenant_apps.members import policy
from tenant_apps.members.errors import (
    AlreadyMemberError,
    InvitationInvalidError,
    LastOwnerError,
    RoleNotAllowedError,
)
from tenant_apps.members.models import Invitation

logger = logging.getLogger(__name__)

INVITATION_SALT = "members.invitation"
INVITATION_DAYS = 7


def member_event_data(member: User) -> dict[str, object]:
    """A person as webhooks describe them."""
    return {
        "id": member.pk,
        "email": member.email,
        "full_name": member.full_name,
        "role": member.role,
        "is_active": member.is_active,
    }


def invitation_event_data(invitation: Invitation) -> dict[str, object]:
    """An invitation as webhooks describe it (never its link: that would let anyone join)."""
    return {
        "id": invitation.pk,
        "email": invitation.email,
        "role": invitation.role,
        "invited_by": invitation.invited_by_id,
        "expires_at": timestamp_iso(invitation.expires_at),
    }


def _owners_besides(user: User) -> int:
    return User.objects.filter(role=User.Role.OWNER, is_active=True).exclude(pk=user.pk).count()


def member_role_change(*, actor: User, member: User, role: str) -> User:
    """Give a member another role (audited, refusals included).

    Raises:
        PermissionDenied, RoleNotAllowedError, LastOwnerError.
    """
    policy.require(actor, "member.change_role", member)
    with audited(
        "member.role_change",
        actor=f"user:{actor.email}",
        tenant=require_tenant(),
        member_id=member.pk,
        role_before=member.role,
        role=role,
    ):
        if role not in policy.roles_assignable_by(actor):
            raise RoleNotAllowedError(f"You cannot make someone {role}.", field="role")
        # Lock the owners so two demotions at once cannot both pass the check below.
        list(User.objects.select_for_update().filter(role=User.Role.OWNER))
        if (
            member.role == User.Role.OWNER
            and role != User.Role.OWNER
            and not _owners_besides(member)
        ):
            raise LastOwnerError("The last owner cannot be demoted; make someone else owner first.")
        member.role = role
        member.is_staff = role in (User.Role.OWNER, User.Role.ADMIN)
        member.save(update_fields=["role", "is_staff"])
        event_emit(event_type=EventType.MEMBER_ROLE_CHANGED, data=member_event_data(member))
    logger.info("member role changed", extra={"member_id": member.pk, "role": role})
    return member


def member_remove(*, actor: User, member: User) -> None:
    """Take someone out of the workspace (their account is deactivated, their work stays).

    Audited, refusals included.

    Raises:
        PermissionDenied, LastOwnerError.
    """
    policy.require(actor, "member.remove", member)
    with audited(
        "member.remove",
        actor=f"user:{actor.email}",
        tenant=require_tenant(),
        member_id=member.pk,
        role=member.role,
    ):
        list(User.objects.select_for_update().filter(role=User.Role.OWNER))
        if member.role == User.Role.OWNER and not _owners_besides(member):
            raise LastOwnerError("The last owner cannot be removed; make someone else owner first.")
        member.is_active = False
        member.save(update_fields=["is_active"])
        event_emit(event_type=EventType.MEMBER_REMOVED, data=member_event_data(member))
    logger.info("member removed", extra={"member_id": member.pk})


def seats_taken() -> int:
    """Seats in use: active people, plus live invitations for addresses not yet among them.

    Each person counts once: an invitation for someone already active holds no seat.
    """
    active = User.objects.filter(is_active=True)
    pending = (
        Invitation.objects.live()
        .exclude(email__in=active.values("email"))
        .values("email")
        .distinct()
    )
    return active.count() + pending.count()


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps(
        {"t": str(require_tenant().id), "i": invitation.pk}, salt=INVITATION_SALT, compress=True
    )


@transaction.atomic
def invitation_send(
    *, actor: User, email: str, role: str, origin: LinkOrigin | None = None
) -> Invitation:
    """Invite someone by e-mail; the link works once, for a week, in this workspace only.

    Raises:
        PermissionDenied, EmailInvalidError, AlreadyMemberError, RoleNotAllowedError,
        PlanLimitReachedError.
    """
    policy.require(actor, "member.invite")
    email = email_clean(email)
    if role not in policy.roles_assignable_by(actor):
        raise RoleNotAllowedError(f"You cannot invite someone as {role}.", field="role")
    if User.objects.filter(email__lower=email, is_active=True).exists():
        raise AlreadyMemberError(f"{email} is already a member of this workspace.", field="email")
    # A new invitation for the same address replaces the old one: one link, one seat.
    replaced = _invitations_revoke_for(email)
    if not replaced:
        plan_limit_require(resource="seats", used=seats_taken)
    invitation = Invitation.objects.create(
        email=email,
        role=role,
        invited_by=actor,
        expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    _invitation_mail(invitation, inviter=actor, origin=origin)
    event_emit(event_type=EventType.INVITATION_CREATED, data=invitation_event_data(invitation))
    logger.info("invitation sent", extra={"invitation_id": invitation.pk, "role": role})
    return invitation


def _invitations_revoke_for(email: str) -> int:
    """Revoke the live invitations for `email`; return how many there were."""
    return Invitation.objects.live().filter(email=email).update(revoked_at=timezone.now())


def _invitation_mail(invitation: Invitation, *, inviter: User, origin: LinkOrigin | None) -> None:
    workspace = require_tenant()
    query = urlencode({"token": invitation_token(invitation)})
    link = workspace_url(workspace.subdomain, f"invitations/accept/?{query}", origin=origin)
    mail_send(
        to=[invitation.email],
        template="members/mail/invitation",
        context={"workspace": workspace.name, "inviter": inviter.email, "url": link},
    )


def _invitation_locked(invitation_id: int) -> Invitation:
    invitation = Invitation.objects.select_for_update().filter(pk=invitation_id).first()
    if invitation is None or not invitation.is_live:
        raise InvitationInvalidError("This invitation is no longer open.")
    return invitation


@transaction.atomic
def invitation_resend(
    *, actor: User, invitation: Invitation, origin: LinkOrigin | None = None
) -> Invitation:
    """Send the invitation's e-mail again, with a fresh week to accept it.

    Raises:
        PermissionDenied, InvitationInvalidError (accepted, revoked or expired).
    """
    policy.require(actor, "invitation.resend", invitation)
    invitation = _invitation_locked(invitation.pk)
    invitation.expires_at = timezone.now() + timedelta(days=INVITATION_DAYS)
    invitation.save(update_fields=["expires_at"])
    _invitation_mail(invitation, inviter=actor, origin=origin)
    logger.info("invitation resent", extra={"invitation_id": invitation.pk})
    return invitation


@transaction.atomic
def invitation_revoke(*, actor: User, invitation: Invitation) -> Invitation:
    """Make the invitation's link stop working and free its seat.

    Raises:
        PermissionDenied, InvitationInvalidError (already accepted, revoked or expired).
    """
    policy.require(actor, "invitation.revoke", invitation)
    invitation = _invitation_locked(invitation.pk)
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    event_emit(event_type=EventType.INVITATION_REVOKED, data=invitation_event_data(invitation))
    logger.info("invitation revoked", extra={"invitation_id": invitation.pk})
    return invitation


def invitation_load(token: str) -> Invitation:
    """Return the open invitation a token names, in the active workspace.

    Raises:
        InvitationInvalidError: forged, expired, used, or issued by another workspace.
    """
    try:
        payload = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_DAYS * 86400)
    except signing.BadSignature:
        raise InvitationInvalidError("This invitation link is not valid or has expired.") from None
    if payload.get("t") != str(require_tenant().id):
        raise InvitationInvalidError("This invitation link is not valid or has expired.")
    invitation = Invitation.objects.filter(pk=payload["i"]).first()
    if invitation is None or invitation.expires_at <= timezone.now():
        raise InvitationInvalidError("This invitation link is not valid or has expired.")
    if invitation.accepted_at is not None:
        raise InvitationInvalidError("This invitation has already been used. Sign in instead.")
    if invitation.revoked_at is not None:
        raise InvitationInvalidError("This invitation was withdrawn or replaced by a newer one.")
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, password: str, full_name: str = "") -> User:
    """Create the invited person's account in this workspace; the link is then spent.

    Someone who was removed earlier gets their account back, with the invitation's role and
    the new password.

    Raises:
        InvitationInvalidError, PasswordRejectedError, AlreadyMemberError, PlanLimitReachedError.
    """
    invitation = invitation_load(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_live:  # a double submit, or a revoke, raced us
        raise InvitationInvalidError("This invitation has already been used. Sign in instead.")
    password_check(password, user=User(email=invitation.email))
    account = User.objects.filter(email__lower=invitation.email).first()
    if account is not None and account.is_active:
        raise AlreadyMemberError(f"{invitation.email} already has an account here; sign in.")
    # The plan may have shrunk since the invitation was sent; this invitation's own seat is
    # among those counted, so the person may still take it.
    plan_limit_require(resource="seats", used=lambda: seats_taken() - 1)
    user = account or User(email=invitation.email)
    user.role = invitation.role
    user.is_staff = invitation.role in (User.Role.OWNER, User.Role.ADMIN)
    user.is_active = True
    user.full_name = single_line(full_name)[:150] or user.full_name
    user.set_password(password)
    user.save()
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    event_emit(
        event_type=EventType.INVITATION_ACCEPTED,
        data={**invitation_event_data(invitation), "member": user.pk},
    )
    logger.info("invitation accepted", extra={"invitation_id": invitation.pk, "member_id": user.pk})
    return user
