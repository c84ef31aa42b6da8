"""Serve a tenant's private local file through a signed, short-lived link; answer a tenant
whose schema is missing with the unavailable page, wherever the error was raised."""

from __future__ import annotations

import sys

from django.core import signing
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.views.defaults import server_error as django_server_error

from tenancy.errors import TenantSchemaMissingError
from tenancy.storage import tenant_file_redirect_url, tenant_file_token_load


def files_serve(request: HttpRequest, token: str) -> HttpResponseBase:
    """Serve a file of this tenant named by a valid, unexpired link issued on this host."""
    try:
        name, filename = tenant_file_token_load(token)
    except signing.BadSignature:
        raise Http404("This link is not valid or has expired.") from None
    if not default_storage.exists(name):
        raise Http404("This file no longer exists.")
    redirect_url = tenant_file_redirect_url(name, filename=filename)
    if redirect_url is not None:
        return HttpResponseRedirect(redirect_url)
    return FileResponse(
        default_storage.open(name, "rb"), as_attachment=True, filename=filename or ""
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """A workspace's handler500: a missing schema is a 503 (never public tables), even when
    it surfaced in a middleware (saving a session) rather than in a view."""
    if isinstance(sys.exc_info()[1], TenantSchemaMissingError):
        response = TemplateResponse(request, "errors/tenant_unavailable.html", status=503)
        response.render()
        return response
    return django_server_error(request)
