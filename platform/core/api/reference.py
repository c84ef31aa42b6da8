"""The API's contract on each workspace host: the OpenAPI document and its reference page.

Both are public: the document is the same for every workspace (docs/openapi.yaml is the
same text), names no workspace and holds no rows. They are TenantApi views, so they answer
only on a workspace's host and count against the caller's budgets like any other request.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import TemplateHTMLRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.views import TenantApi


@cache
def api_schema() -> dict[str, Any]:
    """The OpenAPI document, generated once per process (as `manage.py spectacular` does)."""
    return dict(SchemaGenerator().get_schema(request=None, public=True))


class ApiSchemaView(TenantApi):
    """The OpenAPI 3.1 document: YAML, or JSON with `Accept: application/json` or `?format=json`."""

    permission_classes = [AllowAny]
    renderer_classes = [
        OpenApiYamlRenderer,
        OpenApiYamlRenderer2,
        OpenApiJsonRenderer,
        OpenApiJsonRenderer2,
    ]
    schema = None  # not an operation of the API it describes

    def get(self, request: Request) -> Response:
        return Response(
            api_schema(), headers={"Content-Disposition": 'inline; filename="openapi.yaml"'}
        )


class ApiDocsView(TenantApi, SpectacularSwaggerSplitView):
    """Swagger UI over the document, from our own static files: it works offline, and its
    script is a separate request, so the Content-Security-Policy needs no inline script."""

    permission_classes = [AllowAny]
    renderer_classes = [TemplateHTMLRenderer]
    template_name = "api/docs.html"
    url_name = "api-schema"
    title = "API reference"
    schema = None
