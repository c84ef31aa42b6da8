"""Serve a tenant's private local file through a signed, short-lived link."""

from __future__ import annotations

from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase, HttpResponseRedirect

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
