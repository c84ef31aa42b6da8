"""The workspace's API keys page (owners and admins): parse, call a service, render."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from core.errors import AppError
from core.forms import form_error_add
from shared_apps.accounts.models import User
from tenant_apps.apikeys import selectors, services
from tenant_apps.apikeys.forms import ApiKeyForm
from tenant_apps.members import policy


class ApiKeysBase(LoginRequiredMixin, View):
    @property
    def actor(self) -> User:
        return cast(User, self.request.user)


class ApiKeyListView(ApiKeysBase):
    def get(self, request: HttpRequest, form: ApiKeyForm | None = None) -> HttpResponse:
        keys = selectors.api_key_list(actor=self.actor)
        grantable = policy.api_key_scopes_grantable_by(self.actor)
        context = {"keys": keys, "form": form or ApiKeyForm(scopes=grantable)}
        return render(request, "apikeys/key_list.html", context, status=400 if form else 200)


@method_decorator(never_cache, name="dispatch")
class ApiKeyCreateView(ApiKeyListView):
    def post(self, request: HttpRequest) -> HttpResponse:
        policy.require(self.actor, "apikey.manage")
        form = ApiKeyForm(request.POST, scopes=policy.api_key_scopes_grantable_by(self.actor))
        if form.is_valid():
            try:
                key, plaintext = services.api_key_create(
                    actor=self.actor, **form.service_arguments()
                )
            except AppError as error:
                form_error_add(form, error)
            else:
                # Rendered, not redirected: the full key lives only in this response.
                context = {"key": key, "plaintext": plaintext}
                return render(request, "apikeys/key_created.html", context, status=201)
        return self.get(request, form=form)


class ApiKeyRevokeView(ApiKeysBase):
    """GET asks for confirmation, POST revokes."""

    def get(self, request: HttpRequest, key_id: int) -> HttpResponse:
        key = selectors.api_key_get(actor=self.actor, key_id=key_id)
        context = {
            "title": "Revoke the API key",
            "question": f"Revoke {key}? Programs using it are refused from now on.",
            "button": "Revoke",
            "cancel_url": reverse("apikeys:list"),
        }
        return render(request, "confirm.html", context)

    def post(self, request: HttpRequest, key_id: int) -> HttpResponse:
        key = selectors.api_key_get(actor=self.actor, key_id=key_id)
        try:
            services.api_key_revoke(actor=self.actor, key=key)
        except AppError as error:
            messages.error(request, error.detail)
        else:
            messages.success(request, f"{key} was revoked.")
        return redirect("apikeys:list")
