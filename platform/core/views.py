"""Platform-level endpoints that belong to no app."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from core import health as health_checks
from core.errors import error_catalogue
from core.problems import is_api_request, problem_response
from core.ratelimit import ThrottledError


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the database and the cache respond, 503 otherwise (for load balancers).

    The older, lighter probe, kept for what calls it: /readyz checks more (core.health).
    """
    checks = {
        "database": "ok" if _passes(health_checks.database_check) else "unavailable",
        "cache": "ok" if _passes(health_checks.cache_check) else "unavailable",
    }
    healthy = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
    )


def _passes(check: Callable[[], None]) -> bool:
    try:
        check()
    except Exception:
        return False
    return True


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
