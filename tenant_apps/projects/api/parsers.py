"""The one API body that is not JSON: a file attached to a project."""

from __future__ import annotations

from typing import Any

from rest_framework.parsers import DataAndFiles, MultiPartParser

from tenant_apps.projects.services import attachment_max_bytes, attachment_too_large

# Room for the multipart boundary and the part's headers around the file itself.
MULTIPART_FRAMING_BYTES = 64 * 1024


class AttachmentUploadParser(MultiPartParser):
    """multipart/form-data, refused before a byte is read when the request declares a body
    larger than any attachment may be (the service checks the file's own size either way)."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> DataAndFiles[Any, Any]:
        meta = (parser_context or {})["request"].META
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > attachment_max_bytes() + MULTIPART_FRAMING_BYTES:
            raise attachment_too_large()
        return super().parse(stream, media_type, parser_context)
