"""What fleet operations refuse or fail with (codes listed in docs/errors.md)."""

from core.errors import AppError


class ArchiveMissingError(AppError):
    code, status, title = "archive_missing", 409, "No archive to restore"


class ArchiveCorruptError(AppError):
    code, status, title = "archive_corrupt", 409, "Archive does not match its checksum"


class ExportTargetExistsError(AppError):
    code, status, title = "export_target_exists", 409, "Export file exists"


class OperationFailedError(AppError):
    """A database or storage step of a fleet command failed (the detail says which)."""

    code, status, title = "operation_failed", 500, "Operation failed"


class ArgumentsInvalidError(AppError):
    """The command line does not say what to do (argparse's complaint, or a verb's own)."""

    code, status, title = "arguments_invalid", 400, "Arguments are invalid"


class CommandRefusedError(AppError):
    """`tenants run` of a command that would act beyond the one tenant it names."""

    code, status, title = "command_refused", 409, "Command refused"


class MigrationRunningError(AppError):
    code, status, title = "migration_running", 409, "Another migration is running"


class StaffExistsError(AppError):
    code, status, title = "staff_exists", 409, "A platform account has this e-mail"


class TenantsQuarantinedError(AppError):
    """`tenants verify` found tenants whose schema still does not match its migrations."""

    code, status, title = "tenants_quarantined", 409, "Tenants are quarantined"


# -- placement on a Citus cluster (shared_apps.fleet.placement) --------------------------


class CitusNotEnabledError(AppError):
    """`tenants placement|move|rebalance` on a database without the citus extension."""

    code, status, title = "citus_not_enabled", 409, "Citus mode is not enabled"


class NodeUnknownError(AppError):
    """`tenants move --node` names no active worker of the cluster."""

    code, status, title = "node_unknown", 404, "No such worker node"


class TenantAlreadyOnNodeError(AppError):
    code, status, title = "tenant_already_on_node", 409, "Tenant is already on that node"


class SchemaNotDistributedError(AppError):
    """The tenant's schema is a plain schema on the coordinator: there is nothing to move."""

    code, status, title = "schema_not_distributed", 409, "Schema is not distributed"


class TenantBusyError(AppError):
    """Another operation (an archive, a move) holds the tenant; try again when it ends."""

    code, status, title = "tenant_busy", 409, "Another operation holds the tenant"


class RebalanceStoppedError(AppError):
    """A move of `tenants rebalance` failed; the moves before it stay done."""

    code, status, title = "rebalance_stopped", 409, "Rebalance stopped at a failed move"
