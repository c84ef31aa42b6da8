from core.errors import AppError


class IdempotencyKeyInvalidError(AppError):
    code, status, title = "idempotency_key_invalid", 400, "Idempotency-Key is not valid"


class IdempotencyKeyReusedError(AppError):
    code, status, title = (
        "idempotency_key_reused",
        409,
        "Idempotency-Key was used for another request",
    )


class IdempotencyKeyInProgressError(AppError):
    code, status, title = (
        "idempotency_key_in_progress",
        409,
        "A request with this Idempotency-Key is in progress",
    )
