from core.errors import AppError


class WebhookUrlInvalidError(AppError):
    code, status, title = "webhook_url_invalid", 400, "Webhook URL is not valid"


class WebhookUrlNotAllowedError(AppError):
    """The host is, or resolves to, an address the platform never calls (private networks,
    loopback, link-local, multicast, reserved)."""

    code, status, title = "webhook_url_not_allowed", 400, "Webhook URL is not allowed"


class WebhookEventsInvalidError(AppError):
    code, status, title = "webhook_events_invalid", 400, "Choose known events"


class WebhookEndpointLimitReachedError(AppError):
    code, status, title = "webhook_endpoint_limit_reached", 409, "Too many webhook endpoints"


class WebhookEndpointDisabledError(AppError):
    code, status, title = "webhook_endpoint_disabled", 409, "Webhook endpoint is disabled"
