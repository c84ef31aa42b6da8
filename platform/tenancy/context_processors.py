from __future__ import annotations

from django.http import HttpRequest

from tenancy.context import current_tenant


def tenant(request: HttpRequest) -> dict[str, object]:
    """Expose the active tenant to templates as `tenant` (None on the public site)."""
    return {"tenant": current_tenant()}
