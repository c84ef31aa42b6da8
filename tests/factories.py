"""One factory per model: a minimal valid row; unique values by sequence."""

from __future__ import annotations

import factory

from shared_apps.accounts.models import User

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    """A user of whichever schema is active when it is created."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.django.Password(TEST_PASSWORD)


def member_create(email: str, role: str = "member", *, password: str = TEST_PASSWORD) -> User:
    """A person of the active tenant with a role (owners and admins are staff)."""
    return User.objects.create_user(email, password, role=role, is_staff=role in ("owner", "admin"))


def totp_device_for(user: User) -> object:
    """Enroll a confirmed authenticator app for `user` (what the setup wizard ends with)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(user=user, name="default", confirmed=True)


def totp_code(device: object) -> str:
    """The code the person's authenticator app would show right now."""
    from django_otp.oath import totp

    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"  # type: ignore[attr-defined]
