"""Facts about the request that several layers need, read one way."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The connection's address; X-Forwarded-For only behind TRUSTED_PROXY_COUNT proxies.

    Each trusted proxy appends the address it saw, so the client is the entry that many
    places from the end; anything before it was written by the client and is ignored.
    """
    proxies = int(str(settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return str(request.META.get("REMOTE_ADDR", ""))
