"""Adding a second factor: the gate in front of django-two-factor-auth's setup wizard, the
completion page that shows the first backup codes once, and new backup codes (shown once).

The gate asks for the password again and for a code e-mailed to the account
(`shared_apps.accounts.devices`); the wizard opens only for a session that passed it.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from two_factor.views import BackupTokensView, SetupCompleteView, SetupView

from core.errors import AppError
from core.forms import form_error_add
from shared_apps.accounts import devices
from shared_apps.accounts.models import User

# Set when the wizard enrolled a device: the completion page then makes the backup codes.
BACKUP_CODES_DUE_KEY = "accounts.backup_codes_due"
# Where the person was going before enrolment (the completion page links there).
AFTER_SETUP_KEY = "accounts.after_device_setup"


class PasswordForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from the e-mail",
        min_length=devices.CODE_DIGITS,
        max_length=devices.CODE_DIGITS,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": True}
        ),
    )


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


@method_decorator([sensitive_post_parameters("password"), never_cache], name="dispatch")
class DeviceConfirmView(LoginRequiredMixin, View):
    """Before a device is added: the password again, then the code e-mailed to the account."""

    template_name = "accounts/devices/confirm.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        if devices.device_confirmation_is_fresh(request):
            return redirect(_with_next(reverse("two_factor:setup"), _safe_next(request)))
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        here = _with_next(reverse("devices:confirm"), _safe_next(request))
        step = request.POST.get("step")
        if step == "restart":
            devices.device_confirmation_spend(request)
            return redirect(here)
        if step == "code":
            code_form = CodeForm(request.POST)
            if code_form.is_valid():
                try:
                    devices.device_code_check(request=request, code=code_form.cleaned_data["code"])
                except AppError as error:
                    form_error_add(code_form, error)
                else:
                    return redirect(_with_next(reverse("two_factor:setup"), _safe_next(request)))
            return self._render(request, submitted=code_form)
        password_form = PasswordForm(request.POST)
        if password_form.is_valid():
            try:
                devices.device_code_send(
                    request=request, password=password_form.cleaned_data["password"]
                )
            except AppError as error:
                form_error_add(password_form, error)
            else:
                return redirect(here)
        return self._render(request, submitted=password_form)

    def _render(self, request: HttpRequest, *, submitted: Form | None = None) -> HttpResponse:
        step = "code" if devices.device_code_pending(request) else "password"
        form: Form
        notices: list[str] = []
        if submitted is not None and isinstance(submitted, CodeForm) == (step == "code"):
            form = submitted
        else:
            # The submitted step is over (a code that expired or was tried too often): show
            # why above the step that comes now.
            form = CodeForm() if step == "code" else PasswordForm()
            if submitted is not None:
                notices = [str(e) for errors in submitted.errors.values() for e in errors]
        context = {
            "step": step,
            "form": form,
            "notices": notices,
            "next": _safe_next(request),
            "email": cast(User, request.user).email,
        }
        return render(request, self.template_name, context)


class DeviceSetupView(SetupView):
    """django-two-factor-auth's setup wizard, open only to a session that passed the gate.

    Mounted at the wizard's own path, before two_factor's URLs, so `two_factor:setup` and every
    link to it reach this view. It always finishes on the completion page (the backup codes
    are shown there), which then links to where the person was going.
    """

    @method_decorator(never_cache)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not devices.device_confirmation_is_fresh(request):
            return redirect(_with_next(reverse("devices:confirm"), _safe_next(request)))
        return cast(HttpResponse, super().dispatch(request, *args, **kwargs))

    def get_success_url(self) -> str:
        return reverse("two_factor:setup_complete")

    def done(self, form_list: Any, **kwargs: Any) -> HttpResponse:
        after = _safe_next(self.request)
        response = cast(HttpResponse, super().done(form_list, **kwargs))
        devices.device_confirmation_spend(self.request)
        self.request.session[BACKUP_CODES_DUE_KEY] = True
        if after:
            self.request.session[AFTER_SETUP_KEY] = after
        return response


class DeviceSetupCompleteView(SetupCompleteView):
    """Enrolment done: the first backup codes, shown this once, and a way on."""

    template_name = "two_factor/core/setup_complete.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        codes: list[str] = []
        if request.session.pop(BACKUP_CODES_DUE_KEY, False):
            codes = devices.backup_codes_generate(user=cast(User, request.user))
        # The sign-in flow keeps its destination in "next" for people sent to enrol.
        after = request.session.pop(AFTER_SETUP_KEY, "") or request.session.pop("next", "")
        return render(request, self.template_name, {"codes": codes, "continue_url": after or "/"})


class BackupCodesView(BackupTokensView):
    """New backup codes on request: the old ones stop working; the new ones are shown once."""

    template_name = "two_factor/core/backup_tokens.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # Not BackupTokensView's: it would list the stored codes again.
        context: dict[str, Any] = super(BackupTokensView, self).get_context_data(**kwargs)
        context["remaining"] = devices.backup_codes_remaining(cast(User, self.request.user))
        return context

    def form_valid(self, form: Form) -> HttpResponse:
        codes = devices.backup_codes_generate(user=cast(User, self.request.user))
        return self.render_to_response(self.get_context_data(form=form, codes=codes))
