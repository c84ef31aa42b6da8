from __future__ import annotations

from django import forms

from tenant_apps.events.catalogue import EventType


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        strip=True,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/workspace"}),
        help_text="An https address that answers 2xx within 10 seconds.",
    )
    description = forms.CharField(
        max_length=120, required=False, help_text="Optional: what receives it, e.g. “CRM sync”."
    )
    events = forms.MultipleChoiceField(
        choices=[(value, f"{value}: {label}") for value, label in EventType.choices],
        widget=forms.CheckboxSelectMultiple,
    )
