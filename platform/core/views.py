"""Platform-level endpoints that belong to no app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from core.errors import error_catalogue
from core.problems import is_api_request, problem_response
from core.ratelimit import ThrottledError


@csrf_exempt
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Answer a path under /api/ that names no endpoint: problem+json, whatever the method."""
    return problem_response(
        request, status=404, code="not_found", detail=f"No endpoint at {request.path}."
    )


def errors_catalogue(request: HttpRequest) -> HttpResponse:
    """List every error code with its status: where a problem document's `type` points."""
    codes = [
        {"code": code, "status": status, "title": title}
        for code, (status, title) in error_catalogue().items()
    ]
    return render(request, "errors/catalogue.html", {"codes": codes})


def forbidden_response(request: HttpRequest, *, layout: str = "base.html") -> HttpResponse:
    """A refused action: problem+json under /api/, else the 403 page in `layout`."""
    if is_api_request(request):
        return problem_response(
            request, status=403, code="permission_denied", detail="Your role does not allow this."
        )
    return render(request, "403.html", {"layout": layout}, status=403)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The root site's handler403."""
    return forbidden_response(request)


def throttled_response(
    request: HttpRequest, error: ThrottledError, *, layout: str = "base.html"
) -> HttpResponse:
    """Answer a rate-limited page request: the 429 page, with Retry-After."""
    response = render(request, "429.html", {"layout": layout, "detail": error.detail}, status=429)
    response["Retry-After"] = str(error.retry_after)
    return response
