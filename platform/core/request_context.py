"""The request id (and the signed-in user) of the work in progress, for logs and tasks.

The id comes from a well-formed `X-Request-ID` header or is generated; it is echoed in the
response and travels with every task the request queues, so one id ties a web request to
the background work it caused.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{8,128}\Z")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_request: ContextVar[HttpRequest | None] = ContextVar("request", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def current_user_id() -> int | None:
    """The signed-in user's id, if this request already loaded its user (never queries)."""
    request = _request.get()
    user = getattr(request, "_cached_user", None) if request is not None else None
    return user.pk if user is not None and user.is_authenticated else None


@contextmanager
def request_id_context(request_id: str | None) -> Iterator[str]:
    """Run the block under a request id (a task's inherited one, or a new one)."""
    value = request_id if request_id and _WELL_FORMED.match(request_id) else uuid.uuid4().hex
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


class RequestIdMiddleware:
    """First middleware: give the request its id and echo it in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_token = _request.set(request)
        try:
            with request_id_context(request.headers.get(HEADER)) as request_id:
                response = self.get_response(request)
                response[HEADER] = request_id
                return response
        finally:
            _request.reset(request_token)
