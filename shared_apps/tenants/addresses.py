"""Workspace addresses: the one place that turns a subdomain into a URL."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port

DEFAULT_PORTS = ("80", "443")


def workspace_host(subdomain: str) -> str:
    """Return the workspace's host name: `acme.example.com`."""
    return f"{subdomain}.{settings.ROOT_DOMAIN}"


def workspace_url(subdomain: str, path: str = "/", *, request: HttpRequest | None = None) -> str:
    """Return the absolute URL of `path` in the workspace.

    From a request, the scheme and a non-default port are the ones the client used (so a
    link made on `http://localhost:8000` works there); without one (e-mails sent by the
    worker), they come from PUBLIC_URL_SCHEME and PUBLIC_URL_PORT.
    """
    if request is not None:
        scheme = request.scheme or "http"
        port = split_domain_port(request.get_host())[1]
    else:
        scheme, port = settings.PUBLIC_URL_SCHEME, settings.PUBLIC_URL_PORT
    host = workspace_host(subdomain)
    if port and port not in DEFAULT_PORTS:
        host = f"{host}:{port}"
    return f"{scheme}://{host}/{path.lstrip('/')}"
