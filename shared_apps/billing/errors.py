from core.errors import AppError, NotFoundError


class PlanLimitReachedError(AppError):
    code, status, title = "plan_limit_reached", 403, "Plan limit reached"


class PlanNotFoundError(NotFoundError):
    code, status, title = "plan_not_found", 404, "Plan not found"


class BillingNotConfiguredError(AppError):
    code, status, title = "billing_not_configured", 404, "Billing is not configured"


class SubscriptionExistsError(AppError):
    code, status, title = "subscription_exists", 409, "Workspace already has a subscription"


class NoBillingAccountError(AppError):
    code, status, title = "no_billing_account", 409, "Workspace has no billing account yet"


class BillingUnavailableError(AppError):
    code, status, title = "billing_unavailable", 503, "Billing is temporarily unavailable"


class BillingRequestFailedError(AppError):
    code, status, title = "billing_request_failed", 502, "Stripe refused the billing request"


class SignatureInvalidError(AppError):
    code, status, title = "signature_invalid", 400, "Webhook signature is not valid"


class StripeUnavailableError(Exception):
    """Stripe could not be reached or answered 5xx/429: worth retrying later."""


class StripeRequestError(Exception):
    """Stripe refused a request we made: a bug or a misconfiguration, not worth retrying."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id
