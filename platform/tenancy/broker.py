"""Celery's broker transport: kombu's Redis transport, with tenant tasks put in lanes.

`CELERY_BROKER_TRANSPORT` names `FairRedisTransport`. Publishing to the `tenants` queue
puts the message in its tenant's lane instead of the queue itself (`tenancy.lanes`); the
lanes refill that queue, which workers consume as any Celery queue. Nothing else
changes: consuming, acknowledging and redelivering (`acks_late`, the visibility
timeout, a message rejected when its worker was lost) are kombu's, on the ready list.
A redelivered message goes back to the ready list, where kombu puts it, not to its lane:
it already had its turn.

With TASKS_FAIR_SCHEDULING off, tenant tasks go straight to the queue, first come first
served (kept for comparison: `make bench-fairness`). Messages without a well-formed
tenant header also go straight there: the worker refuses them (tenancy.tasks).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

from tenancy.lanes import TENANT_QUEUE, TaskLanes, eta_of, tenant_lane_key


class FairChannel(kombu_redis.Channel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.global_keyprefix:
            # The lanes' script writes the ready list by its plain name.
            raise ImproperlyConfigured("the fair broker transport takes no global_keyprefix")

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        if queue == TENANT_QUEUE and settings.TASKS_FAIR_SCHEDULING:
            from tenancy.tasks import TENANT_HEADER

            tenant = tenant_lane_key((message.get("headers") or {}).get(TENANT_HEADER))
            if tenant is not None:
                with self.conn_or_acquire() as client:
                    TaskLanes(client).enqueue(tenant, dumps(message), eta=eta_of(message))
                return
        super()._put(queue, message, **kwargs)


class FairRedisTransport(kombu_redis.Transport):
    Channel = FairChannel

    @property
    def supports_batch_publish(self) -> bool:
        # A batch would bypass _put's lanes; each publish is one round trip anyway.
        return False
