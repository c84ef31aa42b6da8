from __future__ import annotations

from django import forms

from shared_apps.tenants.subdomains import MAX_LENGTH


class SignupForm(forms.Form):
    """Shapes only; the signup service is the authority on every rule."""

    name = forms.CharField(label="Company name", max_length=120)
    subdomain = forms.CharField(
        label="Subdomain",
        max_length=MAX_LENGTH + 10,  # room for stray spaces; the service trims and checks
        help_text="Letters, digits and single hyphens; your workspace's address.",
    )
    email = forms.EmailField(label="Your e-mail")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
