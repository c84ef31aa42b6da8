from core.errors import AppError


class HandoffInvalidError(AppError):
    code, status, title = "handoff_invalid", 400, "Sign-in link is not valid"


class EmailInvalidError(AppError):
    code, status, title = "email_invalid", 400, "E-mail address is not valid"


class PasswordRejectedError(AppError):
    code, status, title = "password_rejected", 400, "Password is not acceptable"


class PasswordIncorrectError(AppError):
    code, status, title = "password_incorrect", 400, "Password is not correct"


class DeviceCodeInvalidError(AppError):
    code, status, title = "device_code_invalid", 400, "Confirmation code is not valid"
