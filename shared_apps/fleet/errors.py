"""What fleet operations refuse or fail with (codes listed in docs/tenants.md)."""

from core.errors import AppError


class ArchiveMissingError(AppError):
    code, status, title = "archive_missing", 409, "No archive to restore"


class ArchiveCorruptError(AppError):
    code, status, title = "archive_corrupt", 409, "Archive does not match its checksum"


class ExportTargetExistsError(AppError):
    code, status, title = "export_target_exists", 409, "Export file exists"


class OperationFailedError(AppError):
    """A database or storage step of a fleet command failed (the detail says which)."""

    code, status, title = "operation_failed", 500, "Operation failed"
