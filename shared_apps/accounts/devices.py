"""Second factors of an account: who may add one, backup codes, and what the account is told.

A password alone must not be enough to add an authenticator: whoever has it (or any session
of the account) could enrol their own phone and lock the real person out. So adding a device
asks for the password again and for a six-digit code e-mailed to the account's own address.
The code is kept hashed in the session, works once, for ACCOUNTS_DEVICE_CODE_SECONDS and
ACCOUNTS_DEVICE_CODE_MAX_ATTEMPTS tries; the confirmation it gives lasts
ACCOUNTS_DEVICE_CONFIRMATION_SECONDS, in that session only, and is spent by the enrolment.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from shared_apps.accounts.errors import DeviceCodeInvalidError, PasswordIncorrectError
from shared_apps.accounts.models import User
from shared_apps.mail.services import mail_send
from tenancy import current_tenant

logger = logging.getLogger(__name__)

CONFIRMATION_SESSION_KEY = "accounts.device_confirmation"
BACKUP_DEVICE_NAME = "backup"
CODE_DIGITS = 6


def _now() -> float:
    return timezone.now().timestamp()


def _code_hash(user: User, code: str) -> str:
    return salted_hmac("accounts.device_code", f"{user.pk}:{code}", algorithm="sha256").hexdigest()


def _confirmation(request: HttpRequest) -> dict[str, Any] | None:
    """This session's confirmation state, if it belongs to the signed-in person as they are now."""
    data = request.session.get(CONFIRMATION_SESSION_KEY)
    user = request.user
    if not isinstance(data, dict) or not user.is_authenticated:
        return None
    # A password change (or another person signing in on this browser) voids it.
    if data.get("user") != user.pk or data.get("auth") != user.get_session_auth_hash():
        return None
    return data


def _where() -> str:
    tenant = current_tenant()
    return tenant.name if tenant is not None else "Tenant Platform"


def device_code_send(*, request: HttpRequest, password: str) -> None:
    """E-mail a one-time code to the signed-in person once they typed their password again.

    The code goes to the account's own address, never to one given in the request. A new
    code replaces the previous one. Wrong passwords count towards the sign-in lockout.

    Raises:
        PasswordIncorrectError: the password is not the account's.
    """
    user = request.user
    assert isinstance(user, User)  # only signed-in people reach the gate
    # authenticate(), not check_password(): the lockout backend counts failures here too.
    checked = authenticate(request, username=user.email, password=password)
    if checked is None or checked.pk != user.pk:
        request.session.pop(CONFIRMATION_SESSION_KEY, None)
        raise PasswordIncorrectError("That is not your password.", field="password")
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    request.session[CONFIRMATION_SESSION_KEY] = {
        "user": user.pk,
        "auth": user.get_session_auth_hash(),
        "code": _code_hash(user, code),
        "code_expires_at": _now() + settings.ACCOUNTS_DEVICE_CODE_SECONDS,
        "attempts": 0,
    }
    mail_send(
        to=[user.email],
        template="accounts/mail/device_code",
        context={
            "code": code,
            "workspace": _where(),
            "minutes": settings.ACCOUNTS_DEVICE_CODE_SECONDS // 60,
        },
    )
    logger.info("device confirmation code sent", extra={"user_id": user.pk})


def device_code_pending(request: HttpRequest) -> bool:
    """Whether this session holds a live code to type (the gate's second step)."""
    data = _confirmation(request)
    return bool(data and data.get("code") and data["code_expires_at"] > _now())


def device_code_check(*, request: HttpRequest, code: str) -> None:
    """Accept the e-mailed code: this session may add a device for a while.

    Raises:
        DeviceCodeInvalidError: wrong, expired, already used, or tried too often (then the
            person starts again with their password).
    """
    data = _confirmation(request)
    if data is None or not data.get("code"):
        raise DeviceCodeInvalidError("Enter your password first; we then e-mail you a code.")
    user = request.user
    assert isinstance(user, User)
    if data["code_expires_at"] <= _now():
        request.session.pop(CONFIRMATION_SESSION_KEY, None)
        raise DeviceCodeInvalidError("The code has expired. Enter your password for a new one.")
    if not constant_time_compare(data["code"], _code_hash(user, code.strip())):
        data["attempts"] += 1
        if data["attempts"] >= settings.ACCOUNTS_DEVICE_CODE_MAX_ATTEMPTS:
            request.session.pop(CONFIRMATION_SESSION_KEY, None)
            raise DeviceCodeInvalidError(
                "Too many wrong codes. Enter your password again for a new code."
            )
        request.session[CONFIRMATION_SESSION_KEY] = data
        raise DeviceCodeInvalidError("That code is not right.", field="code")
    # Single use: the code is gone, the confirmation stays for a while.
    request.session[CONFIRMATION_SESSION_KEY] = {
        "user": data["user"],
        "auth": data["auth"],
        "confirmed_until": _now() + settings.ACCOUNTS_DEVICE_CONFIRMATION_SECONDS,
    }
    logger.info("device confirmation passed", extra={"user_id": user.pk})


def device_confirmation_is_fresh(request: HttpRequest) -> bool:
    """Whether this session confirmed password and e-mailed code recently enough to add a device."""
    data = _confirmation(request)
    return bool(data and data.get("confirmed_until", 0) > _now())


def device_confirmation_spend(request: HttpRequest) -> None:
    """End this session's confirmation: the next device needs a new one."""
    request.session.pop(CONFIRMATION_SESSION_KEY, None)


def device_list_for(user: User) -> list[TOTPDevice]:
    """The person's confirmed authenticator apps, oldest first."""
    return list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id"))


def backup_codes_remaining(user: User) -> int:
    """How many unused backup codes the person has."""
    return StaticToken.objects.filter(device__user=user).count()


@transaction.atomic
def backup_codes_generate(*, user: User) -> list[str]:
    """Replace the person's backup codes with new ones and return them (shown once, never stored
    elsewhere). The account is told by e-mail."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name=BACKUP_DEVICE_NAME)
    StaticToken.objects.filter(device__user=user).delete()
    codes = [StaticToken.random_token() for _ in range(settings.ACCOUNTS_BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    mail_send(
        to=[user.email],
        template="accounts/mail/device_backup_codes",
        context={"workspace": _where(), "count": len(codes)},
    )
    logger.info("backup codes generated", extra={"user_id": user.pk})
    return codes


def device_added_notify(device: TOTPDevice) -> None:
    """Tell the account that an authenticator app can now sign it in."""
    _device_notify(device, template="accounts/mail/device_added")


def device_removed_notify(device: TOTPDevice) -> None:
    """Tell the account that an authenticator app no longer signs it in."""
    _device_notify(device, template="accounts/mail/device_removed")


def _device_notify(device: TOTPDevice, *, template: str) -> None:
    try:
        user = device.user
    except User.DoesNotExist:  # the account itself is being deleted
        return
    mail_send(
        to=[user.email],
        template=template,
        context={"workspace": _where(), "device": device.name, "at": timezone.now()},
    )
