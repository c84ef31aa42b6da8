"""Shapes the project endpoints share; each API class nests its own Input (a StrictInput)."""

from __future__ import annotations

from rest_framework import serializers

from core.api.serializers import StrictInput
from tenant_apps.projects.models import Project, Task

__all__ = ["ProjectSummary", "StrictInput", "TaskSummary"]


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
