from core.errors import AppError


class HandoffInvalidError(AppError):
    code, status, title = "handoff_invalid", 400, "Sign-in link is not valid"
