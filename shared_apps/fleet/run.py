"""`tenants run`: a manage.py command inside one tenant, or inside every served tenant."""

from __future__ import annotations

import io
import time
from typing import Any, Protocol

from django.core.management import call_command, get_commands

from shared_apps.audit.services import audited
from shared_apps.fleet.errors import (
    ArgumentsInvalidError,
    CommandRefusedError,
    OperationFailedError,
)
from shared_apps.fleet.selectors import SERVED, tenant_list_served
from shared_apps.tenants.errors import TenantStateInvalidError
from shared_apps.tenants.models import Tenant
from shared_apps.tenants.selectors import tenant_get
from tenancy import TenantRef, tenant_context

# Commands that reach past the tenant `tenants run` names: django-tenants' `migrate` override
# migrates every schema, its cousins create, delete, rename or loop over tenants, and `flush`
# or `dbshell` act on the public tables behind the tenant's search path. Each names the
# fleet verb that does the job for one tenant, recorded.
RUN_REFUSED: dict[str, str] = {
    "migrate": "it migrates every schema; use `tenants migrate --tenant SUBDOMAIN`",
    "migrate_schemas": "it migrates every schema; use `tenants migrate --tenant SUBDOMAIN`",
    "all_tenants_command": "it runs in every schema; use `tenants run --all -- COMMAND`",
    "tenant_command": "it picks its own schema; use `tenants run SUBDOMAIN -- COMMAND`",
    "create_tenant": "it creates another tenant; use `tenants create`",
    "clone_tenant": "it creates another tenant; use `tenants create`",
    "create_missing_schemas": "it creates schemas for other tenants; use `tenants create`",
    "delete_tenant": "it deletes a tenant; use `tenants archive`, then `tenants delete`",
    "rename_schema": "schema names are the platform's own (t_<id>); nothing renames them",
    "create_domain": "domains belong to the public schema; `tenants create` adds the primary one",
    "delete_domain": "domains belong to the public schema; use the platform admin",
    "create_tenant_superuser": "it picks its own schema; use the workspace's members page",
    "collectstatic_schemas": "static files are shared by every tenant; use `collectstatic`",
    "flush": "it would also empty the public tables behind the tenant's search path",
    "dbshell": "a database shell does not stay inside the tenant's schema",
    "tenants": "`tenants` acts on the fleet, not inside a tenant",
}


def run_command_check(name: str) -> None:
    """Refuse a command `tenants run` must not run inside a tenant.

    Raises:
        ArgumentsInvalidError: no manage.py command has that name.
        CommandRefusedError: the command would act beyond one tenant's schema.
    """
    if name in RUN_REFUSED:
        raise CommandRefusedError(f"`tenants run` refuses {name!r}: {RUN_REFUSED[name]}")
    if name not in get_commands():
        raise ArgumentsInvalidError(f"unknown command {name!r}")


class RunReport(Protocol):
    """Where each tenant's outcome goes as soon as it is known, then the summary."""

    def tenant(self, outcome: dict[str, Any]) -> None: ...

    def summary(self, *, tenants: int, failed: list[str]) -> None: ...


def fleet_command_run(
    report: RunReport, *, name: str, args: list[str], actor: str, subdomain: str = ""
) -> list[str]:
    """Run a command inside the tenant with `subdomain`, or without one inside every active
    and suspended tenant that is not quarantined, one after another (audited); return the
    subdomains it ran in.

    Raises:
        ArgumentsInvalidError: no manage.py command is called `name`.
        CommandRefusedError: the command would act beyond the tenants named (`migrate`,
            django-tenants' commands, `flush`: see RUN_REFUSED); nothing ran.
        TenantNotFoundError: no tenant has `subdomain`.
        TenantStateInvalidError: that tenant has no schema (archived, provisioning), or it
            is quarantined (a command there could read or change public's tables).
        OperationFailedError: the command failed in some tenants (the others ran it).
    """
    # Not atomic: each command manages its own transactions.
    with audited("tenant.run", actor=actor, subdomain=subdomain, atomic=False) as entry:
        entry.detail["command"] = [name, *args]
        run_command_check(name)
        tenants = [_served(subdomain)] if subdomain else tenant_list_served()
        failed = []
        for tenant in tenants:
            outcome = tenant_command_run(tenant=tenant, name=name, args=args)
            if outcome["status"] != "succeeded":
                failed.append(tenant.subdomain)
            report.tenant(outcome)
        entry.subdomain = tenants[0].subdomain if len(tenants) == 1 else ""
        entry.detail.update(tenants=len(tenants), failed=failed)
        report.summary(tenants=len(tenants), failed=failed)
        if failed:
            raise OperationFailedError(
                f"{name} failed in {len(failed)} tenant(s): {', '.join(failed)}"
            )
    return [tenant.subdomain for tenant in tenants]


def _served(subdomain: str) -> Tenant:
    tenant = tenant_get(subdomain=subdomain)
    if tenant.status not in SERVED:
        raise TenantStateInvalidError(f"'{tenant.subdomain}' is {tenant.status}; it has no schema")
    if tenant.is_quarantined:
        # `clearsessions` there would empty public's django_session in place of its own.
        raise TenantStateInvalidError(
            f"'{tenant.subdomain}' is quarantined ({tenant.quarantine_reason}); repair its "
            "schema, then `tenants verify`"
        )
    return tenant


def tenant_command_run(*, tenant: Tenant | TenantRef, name: str, args: list[str]) -> dict[str, Any]:
    """Run one manage.py command inside a tenant; capture its output and outcome."""
    out, err = io.StringIO(), io.StringIO()
    status, error = "succeeded", ""
    started = time.monotonic()
    try:
        with tenant_context(tenant):
            call_command(name, *args, stdout=out, stderr=err)
    except (SystemExit, Exception) as failure:  # CommandError is an Exception
        # The next tenant still runs; the summary names this one.
        status, error = "failed", f"{type(failure).__name__}: {failure}"
    return {
        "subdomain": tenant.subdomain,
        "status": status,
        "output": out.getvalue(),
        "error": (err.getvalue() + ("\n" if err.getvalue() and error else "") + error),
        "ms": round((time.monotonic() - started) * 1000, 1),
    }
