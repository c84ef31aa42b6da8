"""Errors a user can cause. Each has a stable `code` (the contract) and an HTTP status;
interfaces render them: a form error, a problem+json response, or a one-line CLI error."""

from __future__ import annotations


class AppError(Exception):
    code = "app_error"
    status = 400
    title = "Request could not be completed"

    def __init__(self, detail: str, *, field: str | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class NotFoundError(AppError):
    code, status, title = "not_found", 404, "Not found"
