"""Input shapes every API shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


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
