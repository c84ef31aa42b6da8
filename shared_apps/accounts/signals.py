"""Hooks into django-otp: the account is told whenever an authenticator app is added or removed,
whichever door did it (the setup wizard, the admin, an owner's reset, an operator)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_otp.plugins.otp_totp.models import TOTPDevice

from shared_apps.accounts.devices import device_added_notify, device_removed_notify


@receiver(post_save, sender=TOTPDevice, dispatch_uid="accounts.totp_device_saved")
def totp_device_saved(
    sender: type[TOTPDevice], instance: TOTPDevice, created: bool, **kwargs: Any
) -> None:
    # Devices are saved on every sign-in (drift, throttling); only a new confirmed one counts,
    # or one confirmed later.
    update_fields = kwargs.get("update_fields") or ()
    if instance.confirmed and (created or "confirmed" in update_fields):
        device_added_notify(instance)


@receiver(post_delete, sender=TOTPDevice, dispatch_uid="accounts.totp_device_deleted")
def totp_device_deleted(sender: type[TOTPDevice], instance: TOTPDevice, **kwargs: Any) -> None:
    if instance.confirmed:
        device_removed_notify(instance)
