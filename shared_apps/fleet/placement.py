"""Where each tenant lives on a Citus cluster, and moving tenants between its workers.

In Citus mode a tenant's schema is a distributed schema: its tables are colocated shards on
one worker, and the coordinator sends every query there. A move therefore changes nothing
the application holds: routes, cache keys, task lanes and file prefixes name the schema,
never the node, and the same connections to the coordinator go on serving the tenant.

- `fleet_placement` reads which node holds each tenant and its size from Citus's catalog
  (`citus_shards`) in one statement for the whole fleet.
- `tenant_move` wraps `citus_schema_move` in the transaction that holds the tenant's row
  lock, the lock archive holds for its whole run: a move never starts during an archive,
  and an archive, forced delete or suspension waits for a move to end.
- `fleet_rebalance` evens out the workers' bytes with such moves, planned by
  `rebalance_plan`. The plan is our own rather than Citus's `get_rebalance_table_shards_plan`
  (which does plan schema moves): Citus's counts every distributed schema, the template's and
  the pool's included, its default strategy charges each schema a 100 MB base cost, so small
  tenants are balanced by count rather than bytes, and `citus_rebalance_start` moves them in
  background jobs that skip the tenant's checks, lock and audit record.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import OperationalError, connection, transaction

from core.errors import AppError
from shared_apps.audit.services import audited
from shared_apps.fleet.errors import (
    ArgumentsInvalidError,
    CitusNotEnabledError,
    NodeUnknownError,
    RebalanceStoppedError,
    SchemaNotDistributedError,
    TenantAlreadyOnNodeError,
    TenantBusyError,
)
from shared_apps.fleet.operations import tenant_operation
from shared_apps.tenants.errors import TenantNotFoundError, TenantStateInvalidError
from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tenancy.citus import citus_mode

logger = logging.getLogger(__name__)

Status = Tenant.Status
Progress = Callable[[str, dict[str, Any]], None]

# Where a schema that is not distributed lives: in the coordinator's own database.
COORDINATOR_LOCAL = "coordinator (local)"
# `--mode` → Citus's shard_transfer_mode. block_writes pauses the tenant's writes for the
# copy and needs nothing of its tables; logical ones replicate first and pause only at the
# switch, but refuse a table without a primary key (force_logical: such tables'
# updates and deletes fail during the move instead).
TRANSFER_MODES = {
    "block_writes": "block_writes",
    "logical": "auto",
    "force_logical": "force_logical",
}
DEFAULT_MODE = "block_writes"
# Rebalance: the workers count as even once the fullest holds at most this share of the
# average worker's bytes more than the emptiest.
DEFAULT_TOLERANCE = 0.10
MOVABLE = (Status.ACTIVE, Status.SUSPENDED)
_NODE_PATTERN = re.compile(r"^(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")


@dataclass(frozen=True, order=True)
class Node:
    """A worker of the cluster, as `pg_dist_node` names it."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        return f"{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Node:
        """Read `HOST:PORT`.

        Raises:
            ArgumentsInvalidError: it is not of that shape.
        """
        match = _NODE_PATTERN.match(text.strip())
        port = int(match["port"]) if match else 0
        if match is None or not 0 < port < 65536:
            raise ArgumentsInvalidError(
                f"--node must be HOST:PORT as the cluster names its workers, e.g. "
                f"10.0.0.5:5432 (got {text!r})"
            )
        return cls(host=match["host"].strip("[]"), port=port)


@dataclass(frozen=True)
class TenantPlacement:
    """One tenant: the worker holding its schema (None when the schema is local, or gone)."""

    tenant: Tenant
    node: Node | None
    size_bytes: int
    has_schema: bool

    @property
    def is_distributed(self) -> bool:
        return self.node is not None

    @property
    def where(self) -> str:
        if self.node is not None:
            return str(self.node)
        return COORDINATOR_LOCAL if self.has_schema else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "subdomain": self.tenant.subdomain,
            "schema": self.tenant.schema_name,
            "node": self.where or None,
            "distributed": self.is_distributed,
            "size_bytes": self.size_bytes,
            "status": self.tenant.status,
        }


@dataclass(frozen=True)
class NodeLoad:
    """What one node holds: `node` is `host:port` or COORDINATOR_LOCAL."""

    node: str
    tenants: int
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "tenants": self.tenants, "size_bytes": self.size_bytes}


@dataclass(frozen=True)
class FleetPlacement:
    tenants: list[TenantPlacement]
    nodes: list[NodeLoad]

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenants": [placement.as_dict() for placement in self.tenants],
            "nodes": [load.as_dict() for load in self.nodes],
            "count": len(self.tenants),
        }


@dataclass(frozen=True)
class MoveResult:
    tenant: Tenant
    source: Node
    target: Node
    mode: str
    size_bytes: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "subdomain": self.tenant.subdomain,
            "schema": self.tenant.schema_name,
            "from": str(self.source),
            "to": str(self.target),
            "mode": self.mode,
            "size_bytes": self.size_bytes,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class PlannedMove:
    placement: TenantPlacement
    source: Node
    target: Node

    def as_dict(self) -> dict[str, Any]:
        return {
            "subdomain": self.placement.tenant.subdomain,
            "from": str(self.source),
            "to": str(self.target),
            "size_bytes": self.placement.size_bytes,
        }


@dataclass(frozen=True)
class RebalanceResult:
    plan: list[PlannedMove]
    before: dict[Node, int]  # bytes per worker
    after: dict[Node, int]  # as the plan leaves them
    moves: list[MoveResult]
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "plan": [step.as_dict() for step in self.plan],
            "nodes_before": {str(node): size for node, size in self.before.items()},
            "nodes_after": {str(node): size for node, size in self.after.items()},
            "moves": [move.as_dict() for move in self.moves],
        }


# -- reads ---------------------------------------------------------------------------------

# Every tenant schema asked for, with its node and bytes: distributed ones from Citus's
# shards (sizes read from the workers), the others summed over their relations here.
_PLACEMENT_SQL = """
SELECT n.nspname, s.nodename, s.nodeport, sum(s.shard_size)::bigint
FROM pg_catalog.citus_shards s
JOIN pg_catalog.pg_class c ON c.oid = s.table_name
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE s.citus_table_type = 'schema' AND n.nspname = ANY(%(schemas)s)
GROUP BY n.nspname, s.nodename, s.nodeport
UNION ALL
SELECT n.nspname, NULL, NULL, coalesce(sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::bigint
FROM pg_catalog.pg_namespace n
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'm')
WHERE n.nspname = ANY(%(schemas)s)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_schema d WHERE d.schemaid = n.oid)
GROUP BY n.nspname
"""

# Primary workers that are up; `placed`: whether new shards (and a rebalance) may go there.
_WORKERS_SQL = """
SELECT nodename, nodeport, shouldhaveshards FROM pg_catalog.pg_dist_node
WHERE groupid <> 0 AND isactive AND noderole = 'primary' ORDER BY nodename, nodeport
"""


def _citus_required() -> None:
    with public_context():
        enabled = citus_mode()
    if not enabled:
        raise CitusNotEnabledError(
            "the database is not a Citus coordinator (no citus extension, or CITUS_MODE=off): "
            "placement and moves need Citus mode (docs/scale-out.md)"
        )


def workers_list() -> dict[Node, bool]:
    """Return the cluster's active primary workers, each with whether it takes new shards."""
    with public_context(), connection.cursor() as cursor:
        cursor.execute(_WORKERS_SQL)
        return {Node(host, port): bool(placed) for host, port, placed in cursor.fetchall()}


def _placements(tenants: list[Tenant]) -> list[TenantPlacement]:
    schemas = [tenant.schema_name for tenant in tenants]
    with public_context(), connection.cursor() as cursor:
        cursor.execute(_PLACEMENT_SQL, {"schemas": schemas})
        rows = cursor.fetchall()
    found: dict[str, tuple[Node | None, int]] = {}
    for schema, host, port, size in rows:
        found[schema] = (Node(host, port) if host is not None else None, int(size))
    placements = []
    for tenant in tenants:
        node, size = found.get(tenant.schema_name, (None, 0))
        placements.append(
            TenantPlacement(
                tenant=tenant, node=node, size_bytes=size, has_schema=tenant.schema_name in found
            )
        )
    return placements


def _node_loads(placements: list[TenantPlacement], workers: Iterable[Node]) -> list[NodeLoad]:
    """Tenants and bytes per worker (every worker, an empty one too), then the coordinator's
    local schemas when there are any."""
    counts: dict[str, list[int]] = {str(node): [0, 0] for node in workers}
    for placement in placements:
        if placement.where:
            load = counts.setdefault(placement.where, [0, 0])
            load[0] += 1
            load[1] += placement.size_bytes
    local = counts.pop(COORDINATOR_LOCAL, None)
    loads = [NodeLoad(node, tenants, size) for node, (tenants, size) in counts.items()]
    if local is not None:
        loads.append(NodeLoad(COORDINATOR_LOCAL, local[0], local[1]))
    return loads


def _tenants_named(subdomains: Iterable[str]) -> list[Tenant]:
    """Every tenant by subdomain, or only those named (each must exist)."""
    tenants = Tenant.objects.order_by("subdomain")
    named = sorted({name.strip().lower() for name in subdomains})
    if not named:
        return list(tenants)
    chosen = list(tenants.filter(subdomain__lower__in=named))
    missing = sorted(set(named) - {tenant.subdomain for tenant in chosen})
    if missing:
        raise TenantNotFoundError(f"no tenant with subdomain '{missing[0]}'")
    return chosen


def fleet_placement(*, actor: str, subdomains: Iterable[str] = ()) -> FleetPlacement:
    """Return where each tenant (or each one named) lives and its size, with a summary per
    node; recorded in the audit trail like every look at the fleet.

    Raises:
        CitusNotEnabledError: the database is not a Citus coordinator.
        TenantNotFoundError: a named subdomain belongs to no tenant.
    """
    names = list(subdomains)
    with audited("tenants.placement", actor=actor, atomic=False, subdomains=names) as entry:
        _citus_required()
        with public_context():
            tenants = _tenants_named(names)
        placements = _placements(tenants)
        placement = FleetPlacement(
            tenants=placements, nodes=_node_loads(placements, workers_list())
        )
        entry.detail["count"] = len(placements)
    return placement


# -- moves ---------------------------------------------------------------------------------


def tenant_move(
    *,
    actor: str,
    node: str,
    tenant: Tenant | None = None,
    subdomain: str = "",
    mode: str = DEFAULT_MODE,
    progress: Progress | None = None,
) -> MoveResult:
    """Move the tenant's schema to the worker `node` (`HOST:PORT`), audited.

    The tenant's writes pause for the copy with `block_writes`; a logical mode pauses them
    only at the switch. Name the tenant by instance or, for operators, by subdomain.
    `progress` hears "moving" before the copy and "moved" after it.

    Raises:
        ArgumentsInvalidError: `node` is not HOST:PORT, or `mode` is unknown.
        CitusNotEnabledError, NodeUnknownError, TenantNotFoundError.
        TenantBusyError: an archive (or another move) holds the tenant.
        TenantStateInvalidError: the tenant is not active or suspended.
        SchemaNotDistributedError: its schema is local to the coordinator.
        TenantAlreadyOnNodeError: it is on `node` already.
        OperationFailedError: Citus refused or failed the move (nothing changed).
    """
    with tenant_operation(
        "tenant.move", actor=actor, tenant=tenant, subdomain=subdomain, node=node, mode=mode
    ) as operation:
        if mode not in TRANSFER_MODES:
            raise ArgumentsInvalidError(f"--mode must be one of {', '.join(TRANSFER_MODES)}")
        target = Node.parse(node)
        _citus_required()
        if target not in workers_list():
            raise NodeUnknownError(
                f"{target} is not an active worker of the cluster (see `tenants placement`)"
            )
        result = _move(operation.tenant, target, mode, progress)
        moved = result.as_dict()
        del moved["subdomain"]  # the record names its tenant already
        operation.detail.update(moved)
    logger.info("tenant moved", extra={"tenant_id": str(result.tenant.id), **moved})
    return result


def _move(tenant: Tenant, target: Node, mode: str, progress: Progress | None) -> MoveResult:
    with public_context(), transaction.atomic():
        locked = _locked(tenant)
        if locked.status not in MOVABLE:
            raise TenantStateInvalidError(
                f"'{locked.subdomain}' is {locked.status}; only active or suspended tenants "
                "can be moved."
            )
        (placement,) = _placements([locked])
        if placement.node is None:
            raise SchemaNotDistributedError(
                f"the schema of '{locked.subdomain}' is not distributed: it lives on the "
                "coordinator, and there is nothing to move"
            )
        source = placement.node
        if source == target:
            raise TenantAlreadyOnNodeError(f"'{locked.subdomain}' is on {target} already")
        if progress is not None:
            moving = {"from": str(source), "to": str(target), "mode": mode}
            progress("moving", {**placement.as_dict(), **moving})
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_catalog.citus_schema_move(%s::regnamespace, %s, %s, "
                "shard_transfer_mode := %s::citus.shard_transfer_mode)",
                [locked.schema_name, target.host, target.port, TRANSFER_MODES[mode]],
            )
    seconds = time.monotonic() - started  # the commit included: it switches the metadata
    result = MoveResult(
        tenant=locked,
        source=source,
        target=target,
        mode=mode,
        size_bytes=placement.size_bytes,
        seconds=seconds,
    )
    if progress is not None:
        progress("moved", result.as_dict())
    return result


def _locked(tenant: Tenant) -> Tenant:
    """The tenant's row, locked until the transaction ends; refused at once while another
    operation (an archive's whole run, another move) holds it."""
    try:
        return Tenant.objects.select_for_update(nowait=True).get(pk=tenant.pk)
    except OperationalError as error:
        if isinstance(error.__cause__, psycopg.errors.LockNotAvailable):
            raise TenantBusyError(
                f"another operation (an archive, a move) is running on '{tenant.subdomain}'; "
                "try again when it ends"
            ) from None
        raise


# -- rebalance -----------------------------------------------------------------------------


def rebalance_plan(
    placements: Iterable[TenantPlacement],
    workers: Iterable[Node],
    *,
    draining: Iterable[Node] = (),
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[list[PlannedMove], dict[Node, int], dict[Node, int]]:
    """Plan moves that even out the workers' bytes; return them with the bytes per worker
    before and after.

    First the tenants on a `draining` worker (one set to take no new shards) move off,
    largest first, each to the emptiest of `workers`. Then, greedy: while the fullest worker
    holds more than `tolerance` of the average worker's bytes above the emptiest, move to
    the emptiest, from the fullest worker that has a tenant smaller than their gap, the
    tenant whose size best halves that gap (so the largest that fits), each tenant at most
    once. Every move narrows the gap between its two workers, so the plan ends. Only active
    and suspended tenants move; tenants on the coordinator count for nothing and stay.
    """
    targets = sorted(set(workers))
    leaving = sorted(set(draining) - set(targets))
    before = {node: 0 for node in [*targets, *leaving]}
    movable: dict[Node, list[TenantPlacement]] = {node: [] for node in before}
    for placement in placements:
        if placement.node not in before:
            continue
        before[placement.node] += placement.size_bytes
        if placement.tenant.status in MOVABLE:
            movable[placement.node].append(placement)
    load = dict(before)
    plan: list[PlannedMove] = []
    if not targets:
        return plan, before, load
    for source in leaving:
        for placement in sorted(
            movable.pop(source), key=lambda p: (-p.size_bytes, p.tenant.subdomain)
        ):
            target = min(targets, key=lambda node: (load[node], node))
            plan.append(PlannedMove(placement=placement, source=source, target=target))
            load[source] -= placement.size_bytes
            load[target] += placement.size_bytes
    placed = {node: load[node] for node in targets}
    average = sum(placed.values()) / len(placed)
    while step := _next_move(placed, movable, tolerance * average):
        movable[step.source].remove(step.placement)
        placed[step.source] -= step.placement.size_bytes
        placed[step.target] += step.placement.size_bytes
        plan.append(step)
    return plan, before, {**load, **placed}


def _next_move(
    load: dict[Node, int], movable: dict[Node, list[TenantPlacement]], tolerance: float
) -> PlannedMove | None:
    """The move to the emptiest worker from the fullest one that has a tenant smaller than
    their gap: the one whose size best halves it. None once even or stuck."""
    emptiest = min(load, key=lambda node: (load[node], node))
    for source in sorted(load, key=lambda node: (-load[node], node)):
        gap = load[source] - load[emptiest]
        if gap <= tolerance:
            return None  # every worker left is as close to the emptiest
        fitting = [p for p in movable[source] if 0 < p.size_bytes < gap]
        if fitting:
            chosen = min(
                fitting,
                key=lambda p: (abs(gap - 2 * p.size_bytes), -p.size_bytes, p.tenant.subdomain),
            )
            return PlannedMove(placement=chosen, source=source, target=emptiest)
    return None


def fleet_rebalance(
    *,
    actor: str,
    dry_run: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    mode: str = DEFAULT_MODE,
    progress: Progress | None = None,
) -> RebalanceResult:
    """Even out the workers' bytes: plan moves (`rebalance_plan`), then make them one at a
    time unless `dry_run`, each audited as a move; the run is audited too. `progress` hears
    "plan", then each move's "moving" and "moved".

    Raises:
        ArgumentsInvalidError: `tolerance` is not between 0 and 1, or `mode` is unknown.
        CitusNotEnabledError.
        RebalanceStoppedError: a move failed; those before it stay done, none after it ran.
    """
    with audited(
        "tenants.rebalance",
        actor=actor,
        atomic=False,
        dry_run=dry_run,
        tolerance=tolerance,
        mode=mode,
    ) as entry:
        if not 0 <= tolerance <= 1:
            raise ArgumentsInvalidError("--tolerance must be between 0 and 100 (percent)")
        if mode not in TRANSFER_MODES:
            raise ArgumentsInvalidError(f"--mode must be one of {', '.join(TRANSFER_MODES)}")
        _citus_required()
        workers = workers_list()
        with public_context():
            tenants = list(Tenant.objects.filter(status__in=MOVABLE).order_by("subdomain"))
        plan, before, after = rebalance_plan(
            _placements(tenants),
            [node for node, placed in workers.items() if placed],
            draining=[node for node, placed in workers.items() if not placed],
            tolerance=tolerance,
        )
        entry.detail["plan"] = [step.as_dict() for step in plan]
        if progress is not None:
            progress("plan", {"plan": plan, "moves": len(plan), "before": before, "after": after})
        moves = [] if dry_run else _moves_made(plan, actor=actor, mode=mode, progress=progress)
        entry.detail["moves_done"] = len(moves)
    return RebalanceResult(plan=plan, before=before, after=after, moves=moves, dry_run=dry_run)


def _moves_made(
    plan: list[PlannedMove], *, actor: str, mode: str, progress: Progress | None
) -> list[MoveResult]:
    done: list[MoveResult] = []
    for number, step in enumerate(plan, start=1):
        subdomain = step.placement.tenant.subdomain
        try:
            done.append(
                tenant_move(
                    actor=actor,
                    tenant=step.placement.tenant,
                    node=str(step.target),
                    mode=mode,
                    progress=progress,
                )
            )
        except AppError as error:
            raise RebalanceStoppedError(
                f"rebalance stopped at move {number} of {len(plan)} ('{subdomain}' to "
                f"{step.target}): {error.detail} [{error.code}]; {len(done)} move(s) done "
                "before it stay done"
            ) from error
    return done
