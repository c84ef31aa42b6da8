"""Workspace addresses: the one place that turns a subdomain into a URL."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port

DEFAULT_PORTS = ("80", "443")


@dataclass(frozen=True)
class LinkOrigin:
    """The scheme and port links are made for: the request's, or the configured ones."""

    scheme: str
    port: str | None = None

    @classmethod
    def of(cls, request: HttpRequest) -> LinkOrigin:
        """The scheme and non-default port the client used (`http://localhost:8000`)."""
        return cls(request.scheme or "http", split_domain_port(request.get_host())[1] or None)

    @classmethod
    def configured(cls) -> LinkOrigin:
        """PUBLIC_URL_SCHEME and PUBLIC_URL_PORT: for links made without a request."""
        return cls(settings.PUBLIC_URL_SCHEME, settings.PUBLIC_URL_PORT or None)


def workspace_host(subdomain: str) -> str:
    """Return the workspace's host name: `acme.example.com`."""
    return f"{subdomain}.{settings.ROOT_DOMAIN}"


def workspace_url(
    subdomain: str,
    path: str = "/",
    *,
    request: HttpRequest | None = None,
    origin: LinkOrigin | None = None,
) -> str:
    """Return the absolute URL of `path` in the workspace.

    The scheme and port are the request's (so a link made on `http://localhost:8000` works
    there), else `origin`'s, else the configured ones (e-mails sent by the worker).
    """
    if request is not None:
        origin = LinkOrigin.of(request)
    origin = origin or LinkOrigin.configured()
    host = workspace_host(subdomain)
    if origin.port and origin.port not in DEFAULT_PORTS:
        host = f"{host}:{origin.port}"
    return f"{origin.scheme}://{host}/{path.lstrip('/')}"
