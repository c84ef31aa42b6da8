from core.errors import AppError


class SubdomainInvalidError(AppError):
    code, status, title = "subdomain_invalid", 400, "Subdomain is not valid"


class SubdomainReservedError(AppError):
    code, status, title = "subdomain_reserved", 400, "Subdomain is reserved"


class SubdomainTakenError(AppError):
    code, status, title = "subdomain_taken", 409, "Subdomain is taken"


class TenantNotFoundError(AppError):
    code, status, title = "tenant_not_found", 404, "Tenant not found"


class TenantStateInvalidError(AppError):
    code, status, title = "tenant_state_invalid", 409, "Tenant is not in the right state"


class NameInvalidError(AppError):
    code, status, title = "name_invalid", 400, "Name is not valid"
