"""The request's tenant: host → route → context. Nothing else reads the host to find one."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.log import log_response

from core.problems import is_api_request, problem_response
from tenancy.context import PUBLIC, public_context, tenant_context
from tenancy.errors import TenantSchemaMissingError
from tenancy.host_routes import resolve_host

logger = logging.getLogger(__name__)

ACTIVE = "active"
SUSPENDED = "suspended"


SUSPENDED_DETAIL = "This workspace is suspended. Its data is kept; contact its owner."
UNAVAILABLE_DETAIL = "This workspace cannot be reached right now; try again shortly."
MAINTENANCE_DETAIL = "This workspace is down for maintenance while an update finishes."


def _logged(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Log a 4xx/5xx answer while the tenant is still active, so its line names the tenant.

    Django would log it after every middleware has returned, outside any tenant.
    """
    if response.status_code >= 400:
        log_response(
            "%s: %s", response.reason_phrase, request.path, response=response, request=request
        )
    return response


class TenantRoutingMiddleware:
    """Activate the public site or the tenant named by the host for the whole request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            host = request.get_host()
        except DisallowedHost:
            return HttpResponseBadRequest("Unknown host.", content_type="text/plain")
        route = resolve_host(host)

        if route.is_public:
            # django-tenants' admin templates read request.tenant.schema_name.
            request.tenant = PUBLIC  # type: ignore[attr-defined]
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF  # type: ignore[attr-defined]
            with public_context():
                return _logged(request, self.get_response(request))

        tenant = route.tenant
        if tenant is None or tenant.status not in (ACTIVE, SUSPENDED):
            if is_api_request(request):
                detail = "No workspace answers at this address."
                return problem_response(
                    request,
                    status=404,
                    code="tenant_not_found",
                    detail=detail,
                    title="Workspace not found",
                )
            return self._page(request, "errors/tenant_not_found.html", 404)
        billing_only = tenant.status == SUSPENDED and tenant.is_suspended_for_non_payment
        if billing_only and not is_api_request(request):
            # Suspended for non-payment: a door to the billing page, so owners can pay (the
            # billing middleware turns away everyone else). Any other page leads there.
            door = settings.TENANT_BILLING_DOOR_PATHS
            if not request.path_info.startswith(tuple(door)):
                return HttpResponseRedirect(door[0])
        elif tenant.status == SUSPENDED:
            if is_api_request(request):
                return _logged(
                    request,
                    problem_response(
                        request, status=403, code="tenant_suspended", detail=SUSPENDED_DETAIL
                    ),
                )
            return self._page(request, "errors/tenant_suspended.html", 403)
        if tenant.is_in_maintenance:
            # The release's migrations failed on it: its schema is behind the code.
            return _logged(request, self._maintenance(request))
        if tenant.is_quarantined:
            # Its schema lacks tables public has under the same names: never enter it.
            return _logged(request, self._unavailable(request))

        request.tenant = tenant  # type: ignore[attr-defined]
        request.billing_only = billing_only  # type: ignore[attr-defined]
        request.urlconf = settings.ROOT_URLCONF  # type: ignore[attr-defined]
        with tenant_context(tenant):
            return _logged(request, self.get_response(request))

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, TenantSchemaMissingError):
            # Fail closed: never fall back to the public tables of the same name.
            logger.error("tenant schema missing", extra={"schema": exception.schema_name})
            return self._unavailable(request)
        return None

    def _unavailable(self, request: HttpRequest) -> HttpResponse:
        if is_api_request(request):
            return problem_response(
                request, status=503, code="tenant_unavailable", detail=UNAVAILABLE_DETAIL
            )
        return self._page(request, "errors/tenant_unavailable.html", 503)

    def _maintenance(self, request: HttpRequest) -> HttpResponse:
        if is_api_request(request):
            response: HttpResponse = problem_response(
                request, status=503, code="tenant_maintenance", detail=MAINTENANCE_DETAIL
            )
        else:
            response = self._page(request, "errors/tenant_maintenance.html", 503)
        # Clients and crawlers come back later instead of treating the workspace as gone.
        response["Retry-After"] = str(settings.TENANT_MAINTENANCE_RETRY_AFTER_SECONDS)
        return response

    def _page(self, request: HttpRequest, template: str, status: int) -> HttpResponse:
        request.tenant = None  # type: ignore[attr-defined]
        return tenant_page(request, template, status)


def tenant_page(
    request: HttpRequest, template: str, status: int, **context: object
) -> HttpResponse:
    """One of the pages shown instead of a workspace's own (not found, suspended, ...)."""
    with public_context():
        response = TemplateResponse(
            request, template, {"root_domain": settings.ROOT_DOMAIN, **context}, status=status
        )
        response.render()
    return response
