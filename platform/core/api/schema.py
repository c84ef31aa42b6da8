"""What drf-spectacular reads from our API classes: nested `Input`, `Output` and `Filters`;
and what every TenantApi answers besides: problem documents, the RateLimit fields, the
Idempotency-Key of a POST.

Loaded through DEFAULT_SCHEMA_CLASS, so only when a schema is generated: a decorator on
each view would import drf_spectacular.openapi while the URLs load (a circular import here).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from core.api.inputs import StrictInput
from core.api.limits import WINDOW_SECONDS
from core.errors import error_catalogue
from core.problems import PROBLEM_CONTENT_TYPE

WRITE_METHODS = ("POST", "PUT", "PATCH")
# Every TenantApi method may answer these (core.api.views): why, in a few words.
PROBLEMS_EVERYWHERE = {
    "401": "No credentials, or the API key is refused (see `WWW-Authenticate`).",
    "403": "The role or the API key's scopes do not allow this.",
    "404": "No such object in this workspace (another workspace's included), or no workspace here.",
    "406": "The `Accept` header asks for something other than JSON.",
    "429": "A request budget is spent (see `Retry-After` and the RateLimit fields).",
}
PROBLEMS_OF_WRITES = {
    "400": "The body fails its schema (`validation_failed`), is not JSON, or breaks a rule.",
    "409": "The object's state forbids it, or the Idempotency-Key is reused or in progress.",
    "413": "The body is too large.",
    "415": "The body is not JSON.",
}
PROBLEM_OF_FILTERS = {"400": "A query parameter fails its schema (`validation_failed`)."}

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$"},
    OpenApiParameter.HEADER,
    description=(
        "Any unique string (a UUID): a retry with the same key and body within 24 hours gets "
        "the first answer again instead of running twice."
    ),
)

# Response headers, defined once as components and referenced by each answer.
HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Limit": {
        "description": "Requests allowed in the window of the budget closest to running out "
        "(draft-ietf-httpapi-ratelimit-headers-06).",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in that window.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Reset": {
        "description": "Seconds until that window closes.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": WINDOW_SECONDS},
    },
    "RateLimit-Policy": {
        "description": 'Every budget applied, e.g. `600;w=60;comment="key", '
        '1200;w=60;comment="workspace"`.',
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "WWW-Authenticate": {
        "description": 'How to authenticate: `Bearer realm="api"` (with `error="invalid_token"` '
        "when a key was sent and refused).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when the answer is the one recorded for this Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def problem_components() -> dict[str, dict[str, Any]]:
    """The problem document (RFC 9457) as the API answers it, and the enum of its codes."""
    catalogue = error_catalogue()
    codes = "\n".join(
        f"* `{code}` ({status}): {title}" for code, (status, title) in catalogue.items()
    )
    return {
        "ProblemCode": {
            "type": "string",
            "enum": list(catalogue),
            "description": "The stable code of the error: the contract (docs/errors.md).\n\n"
            + codes,
        },
        "ProblemFieldError": {
            "type": "object",
            "properties": {
                "field": {"type": ["string", "null"], "description": "`a.b` for nested fields"},
                "code": {"type": "string", "description": "e.g. `required`, `unknown_field`"},
                "detail": {"type": "string"},
            },
            "required": ["field", "code", "detail"],
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details (`application/problem+json`).",
            "properties": {
                "type": {"type": "string", "description": "the code's entry in /errors/"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "instance": {"type": "string", "description": "the path requested"},
                "code": {"$ref": "#/components/schemas/ProblemCode"},
                "errors": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/ProblemFieldError"},
                },
            },
            "required": ["type", "title", "status", "detail", "instance", "code", "errors"],
        },
    }


class ApiSchema(AutoSchema):
    """The request body is the view's `Input`, the response its `Output` (a page of them when
    the view paginates; 201 for a POST unless `response_status` says otherwise), the query
    parameters its `Filters`; other views as drf-spectacular reads them."""

    def _operation(self) -> Any:
        """The class serving this method (core.api.views.operations), else the view."""
        return getattr(self.view, "operations", {}).get(self.method, self.view)

    def get_operation_id(self) -> str:
        """The operation's class, as a service would be named: ProjectCreateApi → project_create."""
        name = self._operation().__name__.removesuffix("Api")
        return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()

    def get_tags(self) -> list[str]:
        """The resource: the last part of the path that is not a parameter (`tasks`)."""
        parts = [part for part in self._tokenize_path() if not part.startswith("{")]
        return parts[-1:]

    def get_description(self) -> str:  # type: ignore[override]
        # The class's own docstring only: TenantApi's would otherwise describe every operation.
        doc = self._operation().__dict__.get("__doc__")
        return inspect.cleandoc(doc) if doc else ""

    def _get_paginator(self) -> Any:
        pagination_class = getattr(self._operation(), "pagination_class", None)
        return pagination_class() if pagination_class is not None else None

    def _is_ours(self) -> bool:
        operation = self._operation()
        return hasattr(operation, "Input") or hasattr(operation, "Output")

    def get_request_serializer(self) -> Any:
        if not self._is_ours():
            return super().get_request_serializer()
        given = getattr(self._operation(), "Input", None)
        return given if self.method in WRITE_METHODS else None

    def get_response_serializers(self) -> Any:
        if not self._is_ours():
            return super().get_response_serializers()
        given = getattr(self._operation(), "Output", None)
        if given is not None and getattr(self._operation(), "pagination_class", None):
            return given(many=True)
        # An operation that answers other than 200 (201 for a POST) says so: 202, 204.
        status = getattr(self._operation(), "response_status", None)
        if status is not None:
            return {status: given}
        return given

    def _is_create_operation(self) -> bool:
        # Our POST endpoints create what they answer with: 201.
        if self._is_ours():
            return self.method == "POST"
        return super()._is_create_operation()

    def get_override_parameters(self) -> list[Any]:
        filters = getattr(self._operation(), "Filters", None)
        idempotency = [IDEMPOTENCY_KEY] if self.method == "POST" else []
        return [*super().get_override_parameters(), *([filters] if filters else []), *idempotency]

    def _problems(self) -> dict[str, str]:
        problems = dict(PROBLEMS_EVERYWHERE)
        if self.method in (*WRITE_METHODS, "DELETE"):
            problems.update(PROBLEMS_OF_WRITES)
        elif getattr(self._operation(), "Filters", None) is not None:
            problems.update(PROBLEM_OF_FILTERS)
        return dict(sorted(problems.items()))

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        """The answer of the operation, then each problem it may answer."""
        for name, schema in problem_components().items():
            self.registry.register_on_missing(
                ResolvedComponent(name, ResolvedComponent.SCHEMA, schema=schema, object=name)
            )
        responses = super()._get_response_bodies(direction)
        problem = {"$ref": "#/components/schemas/Problem"}
        for status, description in self._problems().items():
            responses[status] = self._get_response_for_code(
                OpenApiResponse(response=problem, description=description),
                status,
                media_types=[PROBLEM_CONTENT_TYPE],
                direction=direction,
            )
        return responses

    def _get_response_headers_for_code(self, status_code: str, direction: Any = "response") -> Any:
        names = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"]
        if status_code == "401":
            names.append("WWW-Authenticate")
        if status_code == "429" or (status_code == "409" and self.method == "POST"):
            names.append("Retry-After")
        if self.method == "POST":
            names.append("Idempotent-Replayed")
        headers = super()._get_response_headers_for_code(status_code, direction)
        for name in names:
            component = ResolvedComponent(
                name, ResolvedComponent.HEADER, schema=HEADERS[name], object=name
            )
            self.registry.register_on_missing(component)
            headers[name] = component.ref
        return headers

    def _resolve_path_parameters(self, variables: Any) -> Any:
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if parameter["schema"].get("type") == "integer":
                # `<int:…>` matches digits only, and ids start at 1: a path with anything else
                # names no endpoint (404 `not_found`).
                parameter["schema"]["minimum"] = 1
        return parameters

    def _map_serializer(
        self, serializer: Any, direction: Any, bypass_extensions: bool = False
    ) -> Any:
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if isinstance(serializer, StrictInput) or (
            isinstance(serializer, type) and issubclass(serializer, StrictInput)
        ):
            schema["additionalProperties"] = False  # unknown fields are refused
        return schema

    def _get_serializer_name(
        self, serializer: Any, direction: Any, bypass_extensions: bool = False
    ) -> str:
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        # Every operation nests its own `Input`/`Output`: name them after the operation
        # (ProjectUpdateInput) so that their components do not collide.
        cls = serializer if isinstance(serializer, type) else type(serializer)
        owner, _, nested = cls.__qualname__.rpartition(".")
        if owner and name.endswith(nested):  # PATCH bodies are "Patched<name>"
            return name[: -len(nested)] + owner.replace("Api", "").replace(".", "") + nested
        return name
