"""Account recovery: a person who forgot their password sets a new one through a link
e-mailed to their address.

The same code serves a workspace's people on its host and platform staff on the root host:
the active schema decides whose accounts are searched. Whether an address has an account is
never revealed (the page answers the same, only the mail differs), and logs carry the user
id, never the address or the token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from axes.utils import reset as axes_reset
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from shared_apps.accounts.models import User
from shared_apps.accounts.rules import email_normalize, password_check
from shared_apps.accounts.tokens import password_reset_token
from shared_apps.mail.services import mail_send
from tenancy import current_tenant

logger = logging.getLogger(__name__)

PLATFORM_NAME = "Tenant Platform"


def _place_name() -> str:
    tenant = current_tenant()
    return PLATFORM_NAME if tenant is None else tenant.name


def password_reset_link_path(user: User) -> str:
    """Return the path of a fresh reset link for `user` in the active schema."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = password_reset_token.make_token(user)
    return reverse("accounts:password-reset-confirm", kwargs={"uidb64": uidb64, "token": token})


def password_reset_request(*, email: str, absolute_url: Callable[[str], str]) -> None:
    """E-mail a reset link to the active account with this address, if there is one.

    `absolute_url` turns a path into a link on the host the request came to. Nothing tells
    the caller whether a message left: the answer must not reveal who has an account.
    """
    user = User.objects.filter(email__lower=email_normalize(email), is_active=True).first()
    if user is None or not user.has_usable_password():
        logger.info("password reset requested for no active account")
        return
    mail_send(
        to=[user.email],
        template="accounts/mail/password_reset",
        context={
            "place": _place_name(),
            "url": absolute_url(password_reset_link_path(user)),
            "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
        },
    )
    logger.info("password reset link sent", extra={"reset_user_id": user.pk})


def password_reset_complete(
    *, user: User, password: str, sign_in_url: str, field: str = "new_password"
) -> User:
    """Give `user` a new password; their other sessions end and they are told by e-mail.

    Sessions end because each one carries a hash of the password hash, which Django checks
    on every request. Failed sign-ins recorded for the address are forgotten, so a locked-out
    person can sign in with the new password at once.

    Raises:
        PasswordRejectedError: the validators refuse the password (one line, on `field`).
    """
    password_check(password, user=user, field=field)
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        mail_send(
            to=[user.email],
            template="accounts/mail/password_changed",
            context={
                "place": _place_name(),
                "is_workspace": current_tenant() is not None,
                "url": sign_in_url,
            },
        )
    cleared = axes_reset(username=user.email)
    logger.info("password reset", extra={"reset_user_id": user.pk, "lockouts_cleared": cleared})
    return user
