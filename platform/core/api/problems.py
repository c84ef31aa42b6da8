"""Render every API error as RFC 9457 problem details (`application/problem+json`)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest
from rest_framework import exceptions
from rest_framework.response import Response

from core.errors import AppError
from core.problems import PROBLEM_CODES, PROBLEM_CONTENT_TYPE, problem_body

logger = logging.getLogger(__name__)


def _field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    if isinstance(detail, dict):
        found: list[dict[str, str]] = []
        for field, value in detail.items():
            name = "" if field == "non_field_errors" else f"{prefix}{field}"
            found.extend(_field_errors(value, f"{name}." if name else ""))
        return found
    if isinstance(detail, list):
        return [error for item in detail for error in _field_errors(item, prefix)]
    field = prefix.rstrip(".") or None
    return [{"field": field, "code": getattr(detail, "code", "invalid"), "detail": str(detail)}]  # type: ignore[dict-item]


def problem(
    *,
    request: HttpRequest | None,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
) -> Response:
    body = problem_body(
        request=request, status=status, code=code, title=title, detail=detail, errors=errors
    )
    return Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    instance = request.path if request is not None else ""
    if isinstance(exc, AppError):
        errors = [{"field": exc.field, "code": exc.code, "detail": exc.detail}] if exc.field else []
        response = problem(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            request=request,
            errors=errors,
        )
        retry_after = exc.extra.get("retry_after")
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response
    if isinstance(exc, RequestDataTooBig):
        return problem(
            request=request,
            status=413,
            code="request_too_large",
            title=PROBLEM_CODES["request_too_large"][1],
            detail="The request body is larger than this endpoint accepts.",
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, exceptions.ValidationError):
        return problem(
            status=400,
            code="validation_failed",
            title="Input is not valid",
            detail="Some fields are not valid.",
            request=request,
            errors=_field_errors(exc.detail),
        )
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        response = problem(
            status=exc.status_code,
            code=str(code),
            title=str(exc.default_detail),
            detail=str(exc.detail),
            request=request,
        )
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            response["Retry-After"] = str(int(wait))
        # Set by DRF on a 401 from the first authentication class: how to authenticate.
        challenge = getattr(exc, "auth_header", None)
        if challenge:
            response["WWW-Authenticate"] = challenge
        return response
    logger.exception("unhandled error in API view", extra={"path": instance})
    return problem(
        status=500,
        code="internal_error",
        title="Internal error",
        detail="Something went wrong on our side.",
        request=request,
    )
