"""RFC 9457 problem details: the one place that shapes an error body for a client.

The API's exception handler, the tenant routing middleware and the URL-not-found and
method-not-allowed answers under `/api/` all build their bodies here, so every error a
client sees has the same fields, and `type` links to the code's entry in the error
catalogue (`/errors/#<code>`, listed in docs/errors.md).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
API_PREFIX = "/api/"
ERRORS_PATH = "/errors/"

# Codes answered without an AppError behind them (DRF's own exceptions, routing, handlers);
# with every AppError subclass's code they make the catalogue (docs/errors.md).
PROBLEM_CODES: dict[str, tuple[int, str]] = {
    "validation_failed": (400, "Input is not valid"),
    "parse_error": (400, "Malformed request"),
    "authentication_failed": (401, "Incorrect authentication credentials"),
    "not_authenticated": (401, "Authentication credentials were not provided"),
    "permission_denied": (403, "You do not have permission to perform this action"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "not_acceptable": (406, "Could not satisfy the request Accept header"),
    "request_too_large": (413, "Request body too large"),
    "unsupported_media_type": (415, "Unsupported media type in request"),
    "throttled": (429, "Request was throttled"),
    "internal_error": (500, "Internal error"),
    "tenant_suspended": (403, "Workspace suspended"),
    "tenant_unavailable": (503, "Workspace temporarily unavailable"),
    "tenant_maintenance": (503, "Workspace under maintenance"),
}


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def problem_type(code: str, request: HttpRequest | None = None) -> str:
    """Return the URL of the code's entry in the error catalogue."""
    path = f"{ERRORS_PATH}#{code}"
    if request is None:
        return path
    try:
        return request.build_absolute_uri(path)
    except Exception:  # a host Django refuses: the path alone still names the entry
        return path


def problem_body(
    *,
    request: HttpRequest | None,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    **extra: object,
) -> dict[str, object]:
    """Return the problem document: type, title, status, detail, instance, code, errors."""
    return {
        "type": problem_type(code, request),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path if request is not None else "",
        "code": code,
        "errors": errors or [],
        **extra,
    }


def problem_response(
    request: HttpRequest, *, status: int, code: str, detail: str, title: str | None = None
) -> JsonResponse:
    """Answer with a problem document outside DRF (middleware, URL resolver handlers)."""
    title = title or PROBLEM_CODES[code][1]
    body = problem_body(request=request, status=status, code=code, title=title, detail=detail)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
