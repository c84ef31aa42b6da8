"""Errors raised when tenant context is missing or broken. They are bugs or ops faults,
never user input errors, so they are not AppErrors: they must fail loudly."""


class TenancyError(RuntimeError):
    """Base class for tenant-context failures."""


class NoActiveTenantError(TenancyError):
    """Code that needs a tenant ran with none active; nothing falls back to public."""


class TenantSchemaMissingError(TenancyError):
    """The active tenant's schema does not exist; refusing to read public tables instead."""

    def __init__(self, schema_name: str) -> None:
        super().__init__(
            f"schema {schema_name!r} does not exist; refusing to run queries for this tenant"
        )
        self.schema_name = schema_name
