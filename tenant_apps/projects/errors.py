from core.errors import AppError, NotFoundError


class ProjectNotFoundError(NotFoundError):
    code, status, title = "project_not_found", 404, "Project not found"


class TaskNotFoundError(NotFoundError):
    code, status, title = "task_not_found", 404, "Task not found"


class AttachmentNotFoundError(NotFoundError):
    code, status, title = "attachment_not_found", 404, "File not found"


class ExportNotFoundError(NotFoundError):
    code, status, title = "export_not_found", 404, "Export not found"


class AttachmentTooLargeError(AppError):
    code, status, title = "attachment_too_large", 400, "File is too large"


class ProjectArchivedError(AppError):
    code, status, title = "project_archived", 409, "Project is archived"


class AssigneeInvalidError(AppError):
    code, status, title = "assignee_invalid", 400, "Assignee is not a member"
