from core.errors import AppError


class SecondFactorRequiredError(AppError):
    code, status, title = "second_factor_required", 403, "Two-factor sign-in required"
