"""How django-axes identifies a sign-in attempt, and what a locked-out person sees."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.http import client_ip

__all__ = ["attempted_username", "client_ip", "locked_out"]


def attempted_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str:
    """The e-mail being tried: from the credentials, or from the two-factor login form."""
    if credentials and credentials.get("username"):
        return str(credentials["username"]).strip().lower()
    return (
        str(request.POST.get("auth-username") or request.POST.get("username") or "").strip().lower()
    )


def locked_out(
    request: HttpRequest, credentials: dict[str, Any] | None = None, *args: Any, **kwargs: Any
) -> HttpResponse:
    minutes = int(float(settings.AXES_COOLOFF_TIME) * 60)
    context = {"minutes": minutes}
    return render(request, "accounts/locked_out.html", context, status=429)
