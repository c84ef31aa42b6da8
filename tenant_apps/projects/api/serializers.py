"""Shapes the project endpoints share; each API class nests its own Input (a StrictInput)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenant_apps.projects.models import Attachment, Export, Project, Task
from tenant_apps.projects.selectors import attachment_link, export_link


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


# A link a client may follow some time after listing: longer than the pages' one minute (a
# page redirects at once), well under the hour a signed link can live at most.
DOWNLOAD_LINK_SECONDS = 300


def _absolute(serializer: serializers.Serializer, path: str) -> str:
    request = serializer.context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


@extend_schema_field(OpenApiTypes.BINARY)
class FileUpload(serializers.FileField):
    """A file sent as a multipart/form-data part (the schema says binary, not a URL)."""


class AttachmentSummary(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    name = serializers.CharField(source="original_name")
    size = serializers.IntegerField()
    content_type = serializers.CharField()
    uploaded_by = serializers.IntegerField(source="uploaded_by_id", allow_null=True)
    created_at = serializers.DateTimeField()
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, attachment: Attachment) -> str:
        """A signed link on this workspace's host, valid for DOWNLOAD_LINK_SECONDS."""
        return _absolute(self, attachment_link(attachment, expires_in=DOWNLOAD_LINK_SECONDS))


class ExportSummary(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    status = serializers.ChoiceField(choices=Export.Status.choices)
    rows = serializers.IntegerField()
    requested_by = serializers.IntegerField(source="requested_by_id", allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, export: Export) -> str | None:
        """A signed link to the CSV once the export is done, else null."""
        path = export_link(export, expires_in=DOWNLOAD_LINK_SECONDS)
        return _absolute(self, path) if path is not None else None
