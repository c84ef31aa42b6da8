"""Platform staff: the operators who sign in to the platform admin on the root host.

They live in the public schema's user table, apart from every tenant's users. The first one
is made from the command line (`tenants staff create`); the platform admin then asks them to
enrol a second factor before it opens (core.admin_sites).
"""

from __future__ import annotations

import logging

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction

from shared_apps.accounts.models import User
from shared_apps.accounts.rules import email_clean, password_check
from shared_apps.audit.services import audited
from shared_apps.fleet.errors import StaffExistsError
from tenancy import public_context

logger = logging.getLogger(__name__)


def staff_create(*, email: str, password: str, actor: str) -> User:
    """Create a platform operator (staff and superuser in the public schema), audited.

    Without a second factor yet: the platform admin makes them enrol one at first sign-in.

    Raises:
        EmailInvalidError: the address is malformed.
        PasswordRejectedError: the password fails the validators.
        StaffExistsError: a public-schema account already has this e-mail.
    """
    # Not atomic as a whole: the password is hashed before the transaction opens.
    with audited("staff.create", actor=actor, atomic=False, email=email[:254]) as entry:
        email = email_clean(email)
        entry.detail["email"] = email
        password_check(password, user=User(email=email, is_staff=True))
        hashed = make_password(password)
        with public_context():
            try:
                with transaction.atomic():
                    if User.objects.filter(email__lower=email).exists():
                        raise StaffExistsError(f"A platform account for {email} already exists.")
                    user = User.objects.create(
                        email=email, password=hashed, is_staff=True, is_superuser=True
                    )
            except IntegrityError:
                # Two operators creating the same account at once: the constraint decides.
                raise StaffExistsError(f"A platform account for {email} already exists.") from None
    logger.info("platform staff created", extra={"user_id": user.pk})
    return user
