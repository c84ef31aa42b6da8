"""What drf-spectacular reads from our API classes: nested `Input`, `Output` and `Filters`.

Loaded through DEFAULT_SCHEMA_CLASS, so only when a schema is generated: a decorator on
each view would import drf_spectacular.openapi while the URLs load (a circular import here).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

WRITE_METHODS = ("POST", "PUT", "PATCH")


class ApiSchema(AutoSchema):
    """The request body is the view's `Input`, the response its `Output` (a page of them when
    the view paginates; 201 for a POST unless `response_status` says otherwise), the query
    parameters its `Filters`; other views as drf-spectacular reads them."""

    def _operation(self) -> Any:
        """The class serving this method (core.api.views.operations), else the view."""
        return getattr(self.view, "operations", {}).get(self.method, self.view)

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
        return [*super().get_override_parameters(), *([filters] if filters else [])]

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
