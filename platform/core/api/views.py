"""Base classes for API views: one class per operation."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import APIException, NotFound
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.limits import api_budgets_require, api_request_count, ratelimit_headers
from core.api.parsers import JSONParser
from core.problems import PROBLEM_CONTENT_TYPE


class PublicApi(APIView):
    """An endpoint of the root host that anyone may call (signup, webhooks)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]


PROBLEM_RENDERER = JSONRenderer()


def _serves_tenant(request: Request) -> bool:
    # The tenancy middleware marks every request with what it routed to: a tenant, the public
    # site (`is_public`) or nothing. core sits below tenancy (import contracts), so it reads
    # that mark rather than asking tenancy; views below rely on tenancy's schema being active.
    routed = getattr(request, "tenant", None)
    return getattr(routed, "schema_name", None) is not None and not getattr(
        routed, "is_public", False
    )


class TenantApi(APIView):
    """An endpoint of a workspace's host: signed-in people of that workspace, JSON in and out.

    Every request counts against its budgets (core.api.limits) right after authentication,
    before permissions: a refused or unauthenticated request costs as much as any other, and
    each answer, errors included, carries the RateLimit fields. Every POST goes through the
    API_IDEMPOTENCY function, which runs it once per Idempotency-Key.
    """

    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication: without a workspace there are no users to look up.
        if not _serves_tenant(request):
            raise NotFound("No workspace answers at this address.")
        super().initial(request, *args, **kwargs)
        handler = getattr(self, "post", None)
        if request.method == "POST" and handler is not None and settings.API_IDEMPOTENCY:
            idempotent = import_string(settings.API_IDEMPOTENCY)
            # DRF looks the handler up on the instance after `initial`: shadowing it here
            # keeps DRF's dispatch (exceptions, rendering, headers) exactly as it is.
            setattr(self, "post", partial(idempotent, self, handler))  # noqa: B010

    def perform_authentication(self, request: Request) -> None:
        try:
            user = request.user
        except APIException:
            # Wrong credentials count against the address: guessing keys is throttled.
            self._count(request, signed_in=False)
            raise
        self._count(request, signed_in=bool(user is not None and user.is_authenticated))

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.exception:
            # A problem is JSON whatever the view answers otherwise (the schema's YAML, the
            # reference page's HTML), and whatever the Accept header it could not satisfy.
            response.accepted_renderer = PROBLEM_RENDERER
            response.accepted_media_type = PROBLEM_CONTENT_TYPE
        return response

    def _count(self, request: Request, *, signed_in: bool) -> None:
        usages = api_request_count(request, signed_in=signed_in)
        # self.headers reach every answer of this view, a refusal's included (finalize_response).
        self.headers.update(ratelimit_headers(usages))
        api_budgets_require(usages)


class ApiNotFoundView(TenantApi):
    """A path under /api/ of a workspace that names no endpoint: 404 `not_found` for any
    method, counted and with the RateLimit fields like any answer of the API."""

    permission_classes = [AllowAny]
    schema = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFound(f"No endpoint at {request.path}.")


OPERATION_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def operations(*views: type[APIView]) -> Callable[..., HttpResponse]:
    """Serve one URL by one class per operation: each request goes to the class whose
    handler its method names (HEAD with GET); any other method gets their joint answer
    (OPTIONS, or 405 naming the methods the URL allows).

    The schema generator reads the joint class: its `operations` maps each method to the
    class that serves it (core.api.schema).
    """
    by_method = {
        method: view
        for view in views
        for method in OPERATION_METHODS
        if getattr(view, method.lower(), None) is not None
    }
    joint = cast(
        type[APIView],
        type("".join(view.__name__ for view in views), views, {"operations": by_method}),
    )
    handlers = {method: view.as_view() for method, view in by_method.items()}
    if "GET" in handlers:
        handlers["HEAD"] = handlers["GET"]
    otherwise = joint.as_view()

    def dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return handlers.get(request.method or "", otherwise)(request, *args, **kwargs)

    # What Django and drf-spectacular read from an APIView's view function.
    dispatch.cls = joint  # type: ignore[attr-defined]
    dispatch.initkwargs = {}  # type: ignore[attr-defined]
    # DRF's session authentication checks CSRF itself, as in every APIView.
    return csrf_exempt(dispatch)
