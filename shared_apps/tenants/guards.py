"""Deletion guards: other apps say why a tenant must not be deleted yet.

The tenants app knows nothing of billing; billing registers a guard at start-up (its
AppConfig.ready), and whoever deletes a tenant asks every guard first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared_apps.tenants.models import Tenant

# A guard returns why the tenant cannot be deleted now, or None when it has no objection.
DeletionGuard = Callable[["Tenant"], str | None]

_deletion_guards: list[DeletionGuard] = []


def deletion_guard_register(guard: DeletionGuard) -> DeletionGuard:
    """Ask `guard` before any tenant is deleted (idempotent; usable as a decorator)."""
    if guard not in _deletion_guards:
        _deletion_guards.append(guard)
    return guard


def deletion_refusals(tenant: Tenant) -> list[str]:
    """Return every registered guard's reason not to delete `tenant` (empty: go ahead)."""
    return [reason for guard in _deletion_guards if (reason := guard(tenant))]
