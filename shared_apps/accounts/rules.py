"""Account rules shared by every door that makes or changes a user: signup, invitations,
operators' commands. E-mail addresses are compared case-insensitively and checked once here;
passwords go through Django's validators with the user's own e-mail in view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from shared_apps.accounts.errors import EmailInvalidError, PasswordRejectedError

if TYPE_CHECKING:
    from shared_apps.accounts.models import User

# RFC 5321's limit for a forward path; longer addresses cannot be delivered.
EMAIL_MAX_LENGTH = 254


def email_normalize(email: str) -> str:
    """Return the address trimmed and lower-cased, as it is stored and compared."""
    return email.strip().lower()


def email_clean(email: str, *, field: str = "email") -> str:
    """Return the normalized address.

    Raises:
        EmailInvalidError: it is not a deliverable e-mail address.
    """
    email = email_normalize(email)
    if len(email) > EMAIL_MAX_LENGTH:
        raise EmailInvalidError(
            f"An e-mail address has at most {EMAIL_MAX_LENGTH} characters.", field=field
        )
    try:
        validate_email(email)
    except ValidationError:
        raise EmailInvalidError(f"'{email}' is not a valid e-mail address.", field=field) from None
    return email


def password_check(password: str, *, user: User, field: str = "password") -> None:
    """Refuse a password the validators reject for this user.

    Raises:
        PasswordRejectedError: with every validator's message in one line.
    """
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise PasswordRejectedError(" ".join(error.messages), field=field) from None
