from __future__ import annotations

from django.http import HttpRequest
from django.http.request import split_domain_port


def request_port(request: HttpRequest) -> str | None:
    """Return the port the client addressed (from the Host header), or None for the default."""
    _, port = split_domain_port(request.get_host())
    return port or None
