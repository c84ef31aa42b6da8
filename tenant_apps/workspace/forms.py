from django import forms


class TwoFactorRequireForm(forms.Form):
    required = forms.BooleanField(
        required=False, label="Require two-factor sign-in for everyone in this workspace"
    )
