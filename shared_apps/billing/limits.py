"""Plan limits: what a workspace's plan lets it add (seats, projects, storage) and how many
API requests it may make a minute.

Tenant apps call `plan_limit_require` from their services; it is the only billing module
they import. The API's request budgets (core.api.limits) ask `plan_api_requests_per_minute`,
named in the API_WORKSPACE_BUDGET setting; the task lanes (tenancy.lanes) ask
`plan_task_concurrency`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

from django.db import connection

from shared_apps.billing.errors import PlanLimitReachedError
from shared_apps.billing.selectors import plan_for_tenant
from tenancy import public_context, require_tenant

RESOURCES = {
    "seats": "members (pending invitations included)",
    "projects": "projects",
    "storage_bytes": "of file storage",
}


def _amount(resource: str, value: int) -> str:
    if resource == "storage_bytes":
        return f"{value / (1024 * 1024):.0f} MB"
    return str(value)


def _limit_lock_key(tenant_id: uuid.UUID, resource: str) -> int:
    digest = hashlib.blake2b(f"plan-limit:{tenant_id}:{resource}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)  # PostgreSQL's bigint


def plan_limit_require(*, resource: str, used: Callable[[], int], adding: int = 1) -> None:
    """Refuse an action that would take the active workspace past its plan's limit.

    Call it inside the service's transaction, before the insert it guards. It takes a
    per-workspace, per-resource lock held until that transaction ends and only then calls
    `used()` to count: two requests at the limit cannot both count the same total and both
    insert; the second one counts after the first has committed.

    Raises:
        PlanLimitReachedError: `used() + adding` exceeds the plan's limit for `resource`.
    """
    if resource not in RESOURCES:
        raise ValueError(f"unknown plan resource: {resource}")
    if not connection.in_atomic_block:
        raise RuntimeError("plan limits are checked inside the service's transaction")
    tenant_id = require_tenant().id
    plan = plan_for_tenant(tenant_id=tenant_id)
    limit = plan.limit_for(resource)
    if limit is None:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_limit_lock_key(tenant_id, resource)])
    # READ COMMITTED: this statement's snapshot is taken after the lock, so it sees the row
    # the previous holder committed.
    count = used()
    if count + adding <= limit:
        return
    raise PlanLimitReachedError(
        f"The {plan.name} plan allows {_amount(resource, limit)} {RESOURCES[resource]}; "
        f"this workspace uses {_amount(resource, count)}. "
        "An owner can upgrade on the Billing page.",
        resource=resource,
        limit=limit,
    )


def plan_task_concurrency(tenant_id: uuid.UUID) -> int:
    """Return how many of the workspace's background tasks may run at once (its plan's)."""
    with public_context():  # asked by the worker between tasks, inside no tenant
        return plan_for_tenant(tenant_id=tenant_id).max_concurrent_tasks


def plan_limit(resource: str) -> int | None:
    """Return the active workspace's limit for `resource` (None: unlimited), for display."""
    if resource not in RESOURCES:
        raise ValueError(f"unknown plan resource: {resource}")
    return plan_for_tenant(tenant_id=require_tenant().id).limit_for(resource)


def plan_api_requests_per_minute() -> int | None:
    """Return the active workspace's API requests a minute under its plan (None: unlimited)."""
    return plan_for_tenant(tenant_id=require_tenant().id).api_requests_per_minute
