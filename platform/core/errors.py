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


class NameInvalidError(AppError):
    """A name or title that is empty once cleaned, or too long."""

    code, status, title = "name_invalid", 400, "Name is not valid"


def name_clean(value: str, *, field: str = "name", max_length: int = 120) -> str:
    """Return the name as one clean line (core.text.single_line).

    Raises:
        NameInvalidError: empty once cleaned, or longer than `max_length`.
    """
    from core.text import single_line

    cleaned = single_line(value)
    if not cleaned or len(cleaned) > max_length:
        raise NameInvalidError(f"Give a {field} of 1 to {max_length} characters.", field=field)
    return cleaned


def error_catalogue() -> dict[str, tuple[int, str]]:
    """Return every stable code the platform answers with: its status and title.

    The AppErrors of every installed app (each app's `errors` module) plus the codes the
    problem handler gives DRF's and the routing's own answers. docs/errors.md lists the same.
    """
    from django.utils.module_loading import autodiscover_modules

    from core.problems import PROBLEM_CODES

    autodiscover_modules("errors")
    catalogue = dict(PROBLEM_CODES)
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not AppError:
            catalogue[cls.code] = (cls.status, cls.title)
    return dict(sorted(catalogue.items()))
