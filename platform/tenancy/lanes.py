"""Fair background work: one lane of queued tasks per tenant, served in turn.

A single first-come-first-served queue lets one workspace that queues thousands of tasks
delay every other workspace's. Instead, a tenant task published to the `tenants` queue
is diverted by the broker transport (`tenancy.broker`) into its tenant's lane, a Redis
list. Workers consume an ordinary, short Celery queue, the *ready* list; it is refilled
from the lanes one task per tenant in turn, and only while it holds fewer than
TASKS_READY_DEPTH messages. A quiet tenant's task therefore waits behind at most the
few ready messages and one turn of each busy tenant, never behind a flood.

Each tenant may have at most its plan's `max_concurrent_tasks` tasks dispatched or
running at once (a lease per task, `running:<tenant>`); a tenant at its cap leaves the
ring until one of its tasks finishes. Tasks with an ETA (countdowns, retries with
backoff) wait in Redis, not in a worker's memory holding a slot, until they are due.

Every move is one Lua script, so it is atomic: a message is in exactly one of its
lane, the ready list (and from there kombu's unacknowledged set, redelivered as usual
with `acks_late` and `reject_on_worker_lost`) or the delayed set, whoever dies when.
The scripts run on publish (enqueue), when a worker starts a task and when it finishes
one (both refill the ready list), and once a second from a thread in every worker
(leases of workers that died expire, ETAs come due). Keys: `fair:*` in the broker's
database; a single Redis, not a cluster, like kombu's own Redis transport.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.conf import settings

logger = logging.getLogger(__name__)

TENANT_QUEUE = "tenants"
PLATFORM_QUEUE = "platform"
# Where the previous release queued every task: its workers drain it, nothing new lands.
LEGACY_QUEUE = "default"
PREFIX = "fair:"
# A lease outlives the task's hard time limit by this much: the pool has killed it by then.
LEASE_MARGIN_SECONDS = 60
# The plan's concurrency is looked up at most this often per tenant and process.
CONCURRENCY_CACHE_SECONDS = 60.0

# ARGV: op, key prefix, now (ms), ready list, ready depth, pickup lease (ms), default cap,
# then the op's own: tenant, and a payload, member, lease or cap.
_SCRIPT = """
local op, P, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local READY, DEPTH, PICKUP = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local DEFAULT_CAP = tonumber(ARGV[7])
local RING, CAPPED, CAPS = P .. 'ring', P .. 'capped', P .. 'caps'
local DELAYED, SEQ = P .. 'delayed', P .. 'seq'

local function lane(t) return P .. 'lane:' .. t end
local function running_key(t) return P .. 'running:' .. t end

local function running(t)
  local key = running_key(t)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end

local function lease(t, member, ms)
  local key = running_key(t)
  redis.call('ZADD', key, now + ms, member)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

local function cap_of(t) return tonumber(redis.call('HGET', CAPS, t)) or DEFAULT_CAP end

-- A tenant with queued work waits in the ring unless it sits at its cap (in capped).
-- It joins at the end of the round, like a tenant just served: a stream of newcomers
-- cannot starve one that is already waiting.
local function join(t)
  if not redis.call('ZSCORE', CAPPED, t) and not redis.call('ZSCORE', RING, t) then
    redis.call('ZADD', RING, redis.call('INCR', SEQ), t)
  end
end

local function unpark(t)
  if redis.call('ZSCORE', CAPPED, t) and running(t) < cap_of(t) then
    redis.call('ZREM', CAPPED, t)
    if redis.call('LLEN', lane(t)) > 0 then join(t) end
  end
end

local function member_of(payload)
  local ok, message = pcall(cjson.decode, payload)
  local headers = ok and type(message) == 'table' and message['headers'] or {}
  if type(headers) ~= 'table' then headers = {} end
  local id, retries = headers['id'], headers['retries']
  if type(id) ~= 'string' then id = 'unknown-' .. redis.call('INCR', SEQ) end
  if type(retries) ~= 'number' then retries = 0 end
  return id .. ':' .. string.format('%d', retries)
end

-- The tenant first in the round gives the oldest task of its lane and goes to the end,
-- while the ready list is short; a tenant at its cap is parked instead.
local function dispatch()
  local moved = 0
  while redis.call('LLEN', READY) < DEPTH do
    local head = redis.call('ZRANGE', RING, 0, 0)
    if #head == 0 then break end
    local t = head[1]
    if redis.call('LLEN', lane(t)) == 0 then
      redis.call('ZREM', RING, t)
    elseif running(t) >= cap_of(t) then
      redis.call('ZREM', RING, t)
      redis.call('ZADD', CAPPED, now, t)
    else
      local payload = redis.call('RPOP', lane(t))
      lease(t, member_of(payload), PICKUP)
      redis.call('LPUSH', READY, payload)
      moved = moved + 1
      if redis.call('LLEN', lane(t)) == 0 then
        redis.call('ZREM', RING, t)
      else
        redis.call('ZADD', RING, redis.call('INCR', SEQ), t)
      end
    end
  end
  return moved
end

local function promote_due()
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, 500)
  for _, item in ipairs(due) do
    local cut = string.find(item, '\\n', 1, true)
    if cut then
      local t = string.sub(item, 1, cut - 1)
      -- Due now: first of its tenant's lane, as it would have been at its ETA.
      redis.call('RPUSH', lane(t), string.sub(item, cut + 1))
      join(t)
    end
    redis.call('ZREM', DELAYED, item)
  end
end

if op == 'enqueue' then
  local t, payload, eta = ARGV[8], ARGV[9], tonumber(ARGV[10])
  if eta > now then
    redis.call('ZADD', DELAYED, eta, t .. '\\n' .. payload)
    return 0
  end
  redis.call('LPUSH', lane(t), payload)
  join(t)
  return dispatch()
elseif op == 'start' then
  local t, member, ms, cap = ARGV[8], ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
  if cap and cap > 0 then redis.call('HSET', CAPS, t, cap) end
  lease(t, member, ms)
  return dispatch()
elseif op == 'finish' then
  local t, member = ARGV[8], ARGV[9]
  redis.call('ZREM', running_key(t), member)
  unpark(t)
  return dispatch()
elseif op == 'tick' then
  promote_due()
  for _, t in ipairs(redis.call('ZRANGE', CAPPED, 0, 999)) do unpark(t) end
  return dispatch()
elseif op == 'drop' then
  local t = ARGV[8]
  local dropped = redis.call('LLEN', lane(t))
  redis.call('DEL', lane(t))
  redis.call('ZREM', RING, t)
  redis.call('ZREM', CAPPED, t)
  local mark = t .. '\\n'
  for _, item in ipairs(redis.call('ZRANGE', DELAYED, 0, -1)) do
    if string.sub(item, 1, #mark) == mark then
      redis.call('ZREM', DELAYED, item)
      dropped = dropped + 1
    end
  end
  return dropped
elseif op == 'stats' then
  local pending, oldest = 0, 0
  for _, set in ipairs({RING, CAPPED}) do
    for _, t in ipairs(redis.call('ZRANGE', set, 0, 9999)) do
      pending = pending + redis.call('LLEN', lane(t))
      local ok, message = pcall(cjson.decode, redis.call('LINDEX', lane(t), -1) or '')
      local stamp = ok and type(message) == 'table' and type(message['headers']) == 'table'
        and tonumber(message['headers']['published_at'])
      if stamp and (oldest == 0 or stamp < oldest) then oldest = stamp end
    end
  end
  return {redis.call('ZCARD', RING), redis.call('ZCARD', CAPPED), pending,
          redis.call('ZCARD', DELAYED), redis.call('LLEN', READY), tostring(oldest)}
end
return redis.error_reply('unknown lanes operation ' .. tostring(op))
"""
# Redis names a loaded script by the SHA-1 of its text.
_SCRIPT_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


@dataclass(frozen=True)
class LaneStats:
    """The lanes at one moment: counts only, never a tenant."""

    waiting_tenants: int  # tenants with queued tasks and a free slot, in the ring
    capped_tenants: int  # tenants with queued tasks, all their slots taken
    pending: int  # tasks in lanes
    delayed: int  # tasks waiting for their ETA
    ready: int  # messages in the ready list, for the workers
    oldest_published_at: float | None  # publish time of the oldest task in a lane


def now_ms() -> int:
    """Wall-clock milliseconds: leases and ETAs are compared across machines."""
    return int(time.time() * 1000)


class TaskLanes:
    """One Redis (the broker's database) holding every tenant's lane and the ring."""

    def __init__(self, client: Any, *, prefix: str = PREFIX, ready: str = TENANT_QUEUE) -> None:
        self.client = client
        self.prefix = prefix
        self.ready = ready

    def _run(self, op: str, *args: object) -> Any:
        from redis.exceptions import NoScriptError

        argv = [
            op,
            self.prefix,
            now_ms(),
            self.ready,
            settings.TASKS_READY_DEPTH,
            int(settings.TASKS_PICKUP_SECONDS * 1000),
            settings.TASKS_TENANT_CONCURRENCY,
            *args,
        ]
        try:
            return self.client.evalsha(_SCRIPT_SHA, 0, *argv)
        except NoScriptError:  # a new or restarted Redis: load it once
            self.client.script_load(_SCRIPT)
            return self.client.evalsha(_SCRIPT_SHA, 0, *argv)

    def enqueue(self, tenant_id: str, payload: str, *, eta: float | None = None) -> int:
        """Queue one message in its tenant's lane (or until its ETA); return how many
        messages moved to the ready list."""
        eta_ms = int(eta * 1000) if eta is not None else 0
        return int(self._run("enqueue", tenant_id, payload, eta_ms))

    def started(self, tenant_id: str, member: str, *, lease_seconds: float, cap: int) -> int:
        """A worker started the task: hold its slot for its run and record the tenant's cap."""
        return int(self._run("start", tenant_id, member, int(lease_seconds * 1000), cap))

    def finished(self, tenant_id: str, member: str) -> int:
        """The task ended (any outcome): free its slot and refill the ready list."""
        return int(self._run("finish", tenant_id, member))

    def tick(self) -> int:
        """Bring due ETAs into their lanes, let capped tenants whose leases expired back in
        the ring, refill the ready list."""
        return int(self._run("tick"))

    def drop(self, tenant_id: str) -> int:
        """Remove the tenant's queued and delayed tasks; return how many."""
        return int(self._run("drop", tenant_id))

    def stats(self) -> LaneStats:
        waiting, capped, pending, delayed, ready, oldest = self._run("stats")
        stamp = float(oldest)
        return LaneStats(
            waiting_tenants=int(waiting),
            capped_tenants=int(capped),
            pending=int(pending),
            delayed=int(delayed),
            ready=int(ready),
            oldest_published_at=stamp or None,
        )

    def lane(self, tenant_id: str) -> list[bytes]:
        """The tenant's queued messages, oldest first (for tests and operators)."""
        return list(reversed(self.client.lrange(f"{self.prefix}lane:{tenant_id}", 0, -1)))

    def running(self, tenant_id: str) -> int:
        """Slots the tenant holds now (dispatched or running, leases not expired)."""
        key = f"{self.prefix}running:{tenant_id}"
        return int(self.client.zcount(key, f"({now_ms()}", "+inf"))


# --- the broker's Redis, for code outside kombu's connections -----------------------------

_clients: dict[tuple[int, str], Any] = {}
_clients_lock = threading.Lock()


def broker_lanes() -> TaskLanes:
    """The lanes in the broker's Redis, through a client of this process's own."""
    import redis

    # A forked pool child must not share its parent's sockets.
    key = (os.getpid(), settings.CELERY_BROKER_URL)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = redis.Redis.from_url(
                key[1], socket_timeout=5, socket_connect_timeout=5
            )
    return TaskLanes(client)


def eta_of(message: dict[str, Any]) -> float | None:
    """The epoch seconds of a message's ETA header (countdown, retry backoff), if any."""
    eta = (message.get("headers") or {}).get("eta")
    if not eta:
        return None
    try:
        moment = datetime.fromisoformat(str(eta))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Celery's naive ETAs are UTC
    return moment.timestamp()


def tenant_lane_key(value: object) -> str | None:
    """The lane name for a tenant header: its UUID, or None for anything else."""
    try:
        return str(UUID(str(value)))
    except ValueError:
        return None


# --- each tenant's cap: the plan's, which billing registers -----------------------------

ConcurrencySource = Callable[[UUID], int]
_concurrency_source: ConcurrencySource | None = None
_concurrency_cache: dict[str, tuple[int, float]] = {}


def tenant_concurrency_register(source: ConcurrencySource) -> None:
    """Say where a tenant's task concurrency comes from (billing: the plan's limit)."""
    global _concurrency_source
    _concurrency_source = source
    _concurrency_cache.clear()


def tenant_concurrency(tenant_id: str) -> int:
    """How many tasks of the tenant may be dispatched or running at once."""
    cached = _concurrency_cache.get(tenant_id)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    cap = int(settings.TASKS_TENANT_CONCURRENCY)
    if _concurrency_source is not None:
        try:
            cap = max(1, int(_concurrency_source(UUID(tenant_id))))
        except Exception:
            # The task runs anyway; the platform's default cap holds until the next look.
            logger.warning("task concurrency unknown; default used", exc_info=True)
    _concurrency_cache[tenant_id] = (cap, time.monotonic() + CONCURRENCY_CACHE_SECONDS)
    return cap


# --- the worker: a slot per running task, and the tick ------------------------------------


def _lane_of(task: Any) -> tuple[str, str] | None:
    """(tenant, lease member) of a task that came through a lane, else None."""
    request = getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    if request is None or delivery.get("routing_key") != TENANT_QUEUE:
        return None  # the platform queue, the legacy one, or called in-process
    from tenancy.tasks import TENANT_HEADER, header_of

    tenant = tenant_lane_key(header_of(task, TENANT_HEADER))
    if tenant is None:
        return None
    return tenant, f"{request.id}:{int(getattr(request, 'retries', 0) or 0)}"


def lane_task_started(sender: Any = None, task: Any = None, **_kwargs: Any) -> None:
    """task_prerun: hold the slot for the task's whole run; a ready message was taken, so
    refill the ready list."""
    task = task or sender
    lane = _lane_of(task)
    if lane is None:
        return
    tenant, member = lane
    limit = getattr(task, "time_limit", None) or settings.CELERY_TASK_TIME_LIMIT
    try:
        broker_lanes().started(
            tenant,
            member,
            lease_seconds=float(limit) + LEASE_MARGIN_SECONDS,
            cap=tenant_concurrency(tenant),
        )
    except Exception:
        # The slot stays held until its pickup lease expires; the task itself runs.
        logger.warning("task lane start not recorded", exc_info=True)


def lane_task_finished(sender: Any = None, task: Any = None, **_kwargs: Any) -> None:
    """task_postrun: free the slot, whatever the outcome."""
    task = task or sender
    lane = _lane_of(task)
    if lane is None:
        return
    try:
        broker_lanes().finished(*lane)
    except Exception:
        logger.warning("task lane finish not recorded", exc_info=True)


class LaneTicker:
    """A thread in each worker's main process running the lanes' tick every second."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, **_kwargs: Any) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="task-lanes", daemon=True)
        self._thread.start()

    def stop(self, **_kwargs: Any) -> None:
        self._stop.set()

    def _loop(self) -> None:
        failing = False
        while not self._stop.wait(settings.TASKS_TICK_SECONDS):
            try:
                broker_lanes().tick()
                failing = False
            except Exception:
                if not failing:  # once per outage, not once a second
                    logger.warning("task lanes tick failed", exc_info=True)
                failing = True


TICKER = LaneTicker()


def lane_signals_connect() -> None:
    """Hook the lanes into the worker (once per process)."""
    from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutdown

    task_prerun.connect(lane_task_started, dispatch_uid="tenancy-lanes-start")
    task_postrun.connect(lane_task_finished, dispatch_uid="tenancy-lanes-finish")
    worker_ready.connect(TICKER.start, dispatch_uid="tenancy-lanes-tick")
    worker_shutdown.connect(TICKER.stop, dispatch_uid="tenancy-lanes-tick-stop")


def tenant_tasks_drop(tenant_id: UUID | str) -> int:
    """Drop the tenant's queued tasks (it was suspended, archived, quarantined or deleted);
    return how many. A task already handed to a worker is skipped there."""
    tenant = tenant_lane_key(tenant_id)
    if tenant is None:
        return 0
    try:
        dropped = broker_lanes().drop(tenant)
    except Exception:
        # The worker still skips them when their turn comes: nothing runs either way.
        logger.warning("queued tasks not dropped", exc_info=True)
        return 0
    if dropped:
        logger.info("queued tasks dropped", extra={"tenant_id": tenant, "tasks": dropped})
    return dropped


# --- metrics: counts, never a tenant label ------------------------------------------------


def task_lane_metrics() -> Iterator[Any]:
    """Scrape time: what waits in the lanes and the queues (bounded labels only)."""
    from prometheus_client.core import GaugeMetricFamily

    lanes = broker_lanes()
    stats = lanes.stats()
    platform_length = int(lanes.client.llen(PLATFORM_QUEUE))
    tenants = GaugeMetricFamily(
        "platform_task_lane_tenants",
        "Tenants with queued tasks: waiting for a turn, or at their concurrency cap.",
        labels=["state"],
    )
    tenants.add_metric(["waiting"], stats.waiting_tenants)
    tenants.add_metric(["capped"], stats.capped_tenants)
    yield tenants
    yield GaugeMetricFamily(
        "platform_task_lane_pending", "Tasks queued in tenant lanes.", value=stats.pending
    )
    yield GaugeMetricFamily(
        "platform_task_lane_delayed",
        "Tasks held until their ETA (countdowns, retries with backoff).",
        value=stats.delayed,
    )
    oldest = 0.0
    if stats.oldest_published_at is not None:
        oldest = max(0.0, time.time() - stats.oldest_published_at)
    yield GaugeMetricFamily(
        "platform_task_lane_oldest_seconds",
        "Age of the oldest task still queued in a tenant lane (0 when none).",
        value=oldest,
    )
    queues = GaugeMetricFamily(
        "platform_task_queue_messages",
        "Messages waiting in a Celery queue for a worker (tenants: the ready list).",
        labels=["queue"],
    )
    queues.add_metric([TENANT_QUEUE], stats.ready)
    queues.add_metric([PLATFORM_QUEUE], platform_length)
    yield queues
