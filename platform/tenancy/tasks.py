"""The tenant (and request id) travel with every Celery task.

On publish, `TenantTask` adds message headers naming the active tenant and the request id.
In the worker it enters that tenant before the task body and leaves it after, even when
the body raises (the worker then returns to the public schema). A message that needs a
tenant and arrives without one (sent by name, by beat, or by another service) is refused,
never run against the public schema. Tasks of a suspended, archived, quarantined or
in-maintenance tenant are skipped, and the skip is logged with its reason.

Where tasks wait: a tenant task goes to the `tenants` queue, which the broker transport
turns into one lane per tenant served in turn (tenancy.lanes, tenancy.broker), so one
workspace's flood does not delay another's task; a `PlatformTask` goes to the `platform`
queue, which workers of its own consume, so no tenant can delay it. Nothing is configured
per task.

tenant-schemas-celery does the schema switch on the connection only: the cache namespace,
storage prefix and log fields here follow tenancy's ContextVar, and a message without a
schema header runs in public there. Hence this small class instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from celery import Task
from celery.exceptions import Reject
from django.db import transaction
from django_tenants.utils import get_tenant_model

from core.request_context import current_request_id, request_id_context
from tenancy.context import TenantRef, current_tenant, public_context, tenant_context
from tenancy.lanes import PLATFORM_QUEUE
from tenancy.metrics import tenant_task_timed

logger = logging.getLogger(__name__)

ACTIVE = "active"
TENANT_HEADER = "tenant_id"
TENANT_NAME_HEADER = "tenant"
REQUEST_HEADER = "request_id"


def outgoing_headers() -> dict[str, str]:
    """Headers for a message published now: the active tenant and request id, if any."""
    headers: dict[str, str] = {}
    tenant = current_tenant()
    if tenant is not None:
        headers[TENANT_HEADER] = str(tenant.id)
        headers[TENANT_NAME_HEADER] = tenant.subdomain  # for log lines only, never trusted
    request_id = current_request_id()
    if request_id:
        headers[REQUEST_HEADER] = request_id
    return headers


def header_of(task: Task, name: str) -> str | None:
    """A custom header of the message the task is running from, if any."""
    # Depending on the broker, custom headers are merged into the request or kept apart.
    headers = getattr(task.request, "headers", None) or {}
    value = headers.get(name) or getattr(task.request, name, None)
    return str(value) if value else None


def _load_tenant(tenant_id: str) -> tuple[TenantRef | None, str]:
    """The tenant to run a task in, or None and why its tasks are skipped."""
    with public_context():
        tenant = get_tenant_model().objects.filter(pk=UUID(tenant_id)).first()
    if tenant is None:
        return None, "deleted"
    ref = TenantRef.of(tenant)
    # A release that failed to migrate it: its schema is behind the task's code.
    if ref.is_in_maintenance:
        return None, "maintenance"
    # A quarantined schema lacks tables that public has under the same name: skip, never
    # let a task read public's in their place.
    if ref.is_quarantined:
        return None, "quarantined"
    if ref.status != ACTIVE:
        return None, ref.status
    return ref, ""


class TenantTask(Task):
    """A task that runs inside the tenant that queued it."""

    abstract = True
    requires_tenant = True

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:  # type: ignore[override]
        headers = {**outgoing_headers(), **(options.pop("headers", None) or {})}
        if self.requires_tenant and TENANT_HEADER not in headers:
            raise RuntimeError(f"{self.name} needs a tenant; queue it inside tenant_context()")
        return super().apply_async(args, kwargs, headers=headers, **options)

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        # Capture the tenant now: by commit time the caller may have left its context.
        headers = outgoing_headers()
        send: Callable[[], Any] = lambda: self.apply_async(args, kwargs, headers=headers)  # noqa: E731
        transaction.on_commit(send)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.request.called_directly:
            return super().__call__(*args, **kwargs)  # a plain call runs where the caller is
        with request_id_context(header_of(self, REQUEST_HEADER)):
            tenant_id = header_of(self, TENANT_HEADER)
            if tenant_id is None:
                if self.requires_tenant:
                    logger.error("task refused: no tenant", extra={"task": self.name})
                    raise Reject(f"{self.name} arrived without a tenant", requeue=False)
                with public_context():
                    return super().__call__(*args, **kwargs)
            tenant, skipped_because = _load_tenant(tenant_id)
            if tenant is None:
                logger.info(
                    "task skipped: tenant not served",
                    extra={"task": self.name, "tenant_id": tenant_id, "reason": skipped_because},
                )
                return None
            with tenant_context(tenant), tenant_task_timed(tenant):
                return super().__call__(*args, **kwargs)


class PlatformTask(TenantTask):
    """A task for the whole platform (fan-out, billing, e-mail): runs on the public schema,
    from the platform queue."""

    abstract = True
    requires_tenant = False
    queue = PLATFORM_QUEUE
