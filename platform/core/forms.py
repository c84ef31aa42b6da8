"""How pages show a service's refusal: beside the field it names, else above the form."""

from __future__ import annotations

from django import forms

from core.errors import AppError


def form_error_add(form: forms.Form, error: AppError) -> None:
    """Attach `error` to its field when the form has one by that name, else to the form."""
    form.add_error(error.field if error.field in form.fields else None, error.detail)
