from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django import forms
from django.utils import timezone

from tenant_apps.apikeys.models import ApiKey


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="What uses it, e.g. “CI deploys”.")
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=(
            "Read: look only. Write: also change projects, tasks, files and exports. "
            "Admin: everything, people and invitations included."
        ),
    )
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional; the key stops working at the start of this day.",
    )

    def __init__(self, *args: Any, scopes: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if scopes is not None:  # only the scopes this person may give
            field = self.fields["scopes"]
            assert isinstance(field, forms.MultipleChoiceField)
            field.choices = [(v, label) for v, label in ApiKey.Scope.choices if v in scopes]

    def service_arguments(self) -> dict[str, Any]:
        """The cleaned data as `api_key_create` takes it (the day as a moment)."""
        data = self.cleaned_data
        expires_on = data.get("expires_on")
        expires_at = (
            timezone.make_aware(datetime.combine(expires_on, time.min)) if expires_on else None
        )
        return {"name": data["name"], "scopes": data["scopes"], "expires_at": expires_at}
