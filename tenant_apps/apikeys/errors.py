from core.errors import AppError


class ApiKeyScopeNotAllowedError(AppError):
    code, status, title = "api_key_scope_not_allowed", 403, "Scope cannot be given"


class ApiKeyInvalidError(AppError):
    code, status, title = "api_key_invalid", 400, "API key cannot be created"
