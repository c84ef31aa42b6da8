"""Reading what a client sent: strict bodies, and query strings through a Filters serializer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.request import Request


# An input that refuses fields it does not name (a typo must not pass unnoticed); the
# OpenAPI document says so too (`additionalProperties: false`, core.api.schema). A comment,
# not a docstring: drf-spectacular would print a docstring as every input's description.
class StrictInput(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field is not accepted here."] for name in unknown},
                    code="unknown_field",
                )
        return super().to_internal_value(data)


def parse_query(filters: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Return the query string as `filters` validates it (400 `validation_failed` if not)."""
    parsed = filters(data=request.query_params)
    parsed.is_valid(raise_exception=True)
    return dict(parsed.validated_data)


def parse_body(given: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Return the body as `given` validates it (400 `validation_failed` if not)."""
    payload = given(data=request.data)
    payload.is_valid(raise_exception=True)
    return dict(payload.validated_data)
