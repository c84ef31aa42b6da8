"""A workspace suspended for non-payment: its owners may sign in and pay, nobody else gets in.

The routing middleware (tenancy) lets such a workspace's sign-in and billing paths through
and marks the request `billing_only`; here, after sign-in is known, anyone signed in who may
not manage billing sees the suspended page instead (signing out stays possible).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from shared_apps.accounts.models import User
from shared_apps.billing import policy

SIGN_OUT_PATH = "/logout/"


class BillingDoorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if getattr(request, "billing_only", False):
            user = cast(User, request.user)
            if (
                user.is_authenticated
                and not policy.can(user, "billing.manage")
                and not request.path_info.startswith(SIGN_OUT_PATH)
            ):
                context = {"for_non_payment": True}
                return render(request, "errors/tenant_suspended.html", context, status=403)
        return self.get_response(request)
