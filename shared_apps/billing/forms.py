from __future__ import annotations

from django import forms


class PlanChoiceForm(forms.Form):
    plan = forms.SlugField(max_length=40)
