"""How django-axes identifies a sign-in attempt, and what a locked-out person sees."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def attempted_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str:
    """The e-mail being tried: from the credentials, or from the two-factor login form."""
    if credentials and credentials.get("username"):
        return str(credentials["username"]).strip().lower()
    return (
        str(request.POST.get("auth-username") or request.POST.get("username") or "").strip().lower()
    )


def client_ip(request: HttpRequest) -> str:
    """The connection's address; X-Forwarded-For only behind TRUSTED_PROXY_COUNT proxies."""
    proxies = int(str(settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return str(request.META.get("REMOTE_ADDR", ""))


def locked_out(
    request: HttpRequest, credentials: dict[str, Any] | None = None, *args: Any, **kwargs: Any
) -> HttpResponse:
    minutes = int(float(settings.AXES_COOLOFF_TIME) * 60)
    context = {"minutes": minutes}
    return render(request, "accounts/locked_out.html", context, status=429)
