"""Account recovery forms: they check shape; the rules live in `rules` and `recovery`."""

from __future__ import annotations

from typing import Any

from django import forms

from shared_apps.accounts.models import User
from shared_apps.accounts.rules import EMAIL_MAX_LENGTH


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label="E-mail",
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class NewPasswordForm(forms.Form):
    """The new password; Django's reset view hands the account over as `user`."""

    new_password = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
    )

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)
