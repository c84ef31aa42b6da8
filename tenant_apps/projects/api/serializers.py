"""Shapes the project endpoints share; each API class nests its own Input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from tenant_apps.projects.models import Project, Task


class StrictInput(serializers.Serializer):
    """An input that refuses fields it does not name (a typo must not pass unnoticed)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field is not accepted here."] for name in unknown},
                    code="unknown_field",
                )
        return super().to_internal_value(data)


class ProjectSummary(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=Project.Status.choices)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TaskSummary(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Task.Status.choices)
    assignee = serializers.IntegerField(source="assignee_id", allow_null=True)
    due_date = serializers.DateField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
