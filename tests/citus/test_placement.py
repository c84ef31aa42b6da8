"""`tenants placement`, `move` and `rebalance` on a real Citus cluster.

Moves copy shards between workers over connections of their own, so the tenants here are
committed, this module's own (named for the run, removed at the module's end). A rebalance
moves whatever tenants it finds: every other tenant is put back on its worker after each
test, so the session's tenants stay where the other Citus tests expect them.
"""

from __future__ import annotations

import io
import json
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.fleet import archive
from shared_apps.fleet.archive import tenant_archive
from shared_apps.fleet.creation import tenant_create
from shared_apps.fleet.placement import COORDINATOR_LOCAL, fleet_placement
from shared_apps.tenants.models import Tenant
from tenancy import public_context, schemas, tenant_context
from tenancy.citus import citus_mode
from tenant_apps.projects.models import Project, Task
from tests.citus.conftest import (
    ClusterTenant,
    run_subdomain,
    schema_move,
    schema_node,
    tenants_purge,
    worker_nodes,
)
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.citus

# The tenants this module makes: `pl-…` within the run's prefix.
MINE = "pl-"
HEAVY = ("heavy-1", "heavy-2", "heavy-3")
HEAVY_ROWS = 20_000
# Not derived from the subdomain: the run's random id can make an address the password
# validator finds too similar to the test password.
OWNER_EMAIL = "owner@placement.test"


def tenants(*args: str) -> str:
    out = io.StringIO()
    call_command("tenants", *args, stdout=out)
    return out.getvalue()


def failing(*args: str) -> dict[str, Any]:
    """Run a verb that must fail with --json; return its error document."""
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("tenants", *args, "--json", stdout=out)
    error: dict[str, Any] = json.loads(out.getvalue())["error"]
    return error


def last_record(action: str, subdomain: str = "") -> AuditRecord:
    with public_context():
        records = AuditRecord.objects.filter(action=action)
        if subdomain:
            records = records.filter(subdomain=subdomain)
        return records.latest("created_at")


def schema_bytes(schema_name: str) -> int:
    """The bytes of a distributed schema's shards, as Citus reports them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(s.shard_size), 0) FROM citus_schemas cs "
            "JOIN citus_shards s ON s.colocation_id = cs.colocation_id "
            "WHERE cs.schema_name = %s::regnamespace",
            [schema_name],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def other_worker(node: str | None) -> str:
    return next(worker for worker in worker_nodes() if worker != node)


def committed_tenant(name: str, *, projects: int = 1, tasks: int = 5) -> ClusterTenant:
    """A committed tenant of this module, with projects and tasks, on a worker."""
    subdomain = run_subdomain(f"{MINE}{name}")
    tenant = tenant_create(
        name=f"Placement {name}",
        subdomain=subdomain,
        owner_email=OWNER_EMAIL,
        owner_password=TEST_PASSWORD,
    ).tenant
    node = schema_node(tenant.schema_name)
    assert node in worker_nodes(), f"{tenant.schema_name} is not on a worker: {node}"
    with tenant_context(tenant), connection.cursor() as cursor:
        for number in range(projects):
            project = Project.objects.create(name=f"{name} project {number}")
            cursor.execute(
                "INSERT INTO projects_task (project_id, title, status, created_at, updated_at) "
                "SELECT %s, %s || n || repeat('x', 80), 'todo', now(), now() "
                "FROM generate_series(1, %s) AS n",
                [project.pk, f"{name} task ", tasks],
            )
    return ClusterTenant(tenant, OWNER_EMAIL, str(node))


def signed_in(member: ClusterTenant) -> Any:
    client = member.client()
    with tenant_context(member.tenant):
        client.force_login(User.objects.get(email=member.owner_email))
    return client


def rows_of(tenant: Tenant) -> tuple[list[str], int]:
    with tenant_context(tenant):
        names = list(Project.objects.order_by("name").values_list("name", flat=True))
        return names, Task.objects.count()


@pytest.fixture(scope="module")
def module_db(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Committed work for the module; its tenants are removed at its end."""
    with django_db_blocker.unblock():
        yield
        tenants_purge(run_subdomain(MINE))


@pytest.fixture
def unblocked(django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


@pytest.fixture(autouse=True)
def _placements_kept(django_db_blocker: Any) -> Iterator[None]:
    """Put every tenant that is not this module's back on the worker it was on."""
    with django_db_blocker.unblock(), public_context():
        before = {
            tenant.schema_name: schema_node(tenant.schema_name)
            for tenant in Tenant.objects.exclude(subdomain__startswith=run_subdomain(MINE))
        }
    yield
    with django_db_blocker.unblock(), public_context():
        for schema_name, node in before.items():
            now = schema_node(schema_name) if schemas.schema_exists(schema_name) else node
            if node is not None and now != node:
                schema_move(schema_name, node)


@pytest.fixture(scope="module")
def pair(module_db: None) -> tuple[ClusterTenant, ClusterTenant]:
    """Two tenants of this module, on different workers."""
    east, west = committed_tenant("east"), committed_tenant("west")
    if east.node == west.node:
        schema_move(west.tenant.schema_name, other_worker(east.node))
    return east, west


@pytest.fixture(scope="module")
def mover(module_db: None) -> ClusterTenant:
    return committed_tenant("mover", projects=3, tasks=200)


@pytest.fixture(scope="module")
def heavy(module_db: None) -> list[ClusterTenant]:
    """Three tenants of several MB each, far larger than the rest of the fleet."""
    made = [committed_tenant(name, tasks=HEAVY_ROWS) for name in HEAVY]
    for member in made:
        with connection.cursor() as cursor:  # sizes stay put while the tests read them
            cursor.execute(f"VACUUM {schemas.quote(member.tenant.schema_name)}.projects_task")
    return made


@pytest.fixture
def imbalanced(heavy: list[ClusterTenant], unblocked: None) -> list[ClusterTenant]:
    """The heavy tenants all on the first worker."""
    first = worker_nodes()[0]
    for member in heavy:
        if schema_node(member.tenant.schema_name) != first:
            schema_move(member.tenant.schema_name, first)
    return heavy


@pytest.fixture
def lock_holder() -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own, in a transaction, to hold a tenant's row lock."""
    db = connection.settings_dict
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    with psycopg.connect(url) as holder:
        yield holder
        holder.rollback()


def hold_row_lock(holder: psycopg.Connection[Any], tenant: Tenant) -> None:
    """Lock the tenant's row as an archive does for its whole run."""
    holder.execute("SELECT 1 FROM tenants_tenant WHERE id = %s FOR UPDATE", [tenant.id])


# -- placement -----------------------------------------------------------------------------


def test_placement_names_each_tenants_worker_and_size(
    pair: tuple[ClusterTenant, ClusterTenant], unblocked: None
) -> None:
    east, west = (member.tenant for member in pair)
    east_node, west_node = schema_node(east.schema_name), schema_node(west.schema_name)
    assert east_node != west_node

    document = json.loads(tenants("placement", east.subdomain, west.subdomain, "--json"))

    assert document["tenants"] == [
        {
            "subdomain": tenant.subdomain,
            "schema": tenant.schema_name,
            "node": node,
            "distributed": True,
            "size_bytes": schema_bytes(tenant.schema_name),
            "status": "active",
        }
        for tenant, node in ((east, east_node), (west, west_node))
    ]
    sizes = {east_node: schema_bytes(east.schema_name), west_node: schema_bytes(west.schema_name)}
    assert document["nodes"] == [
        {"node": node, "tenants": 1, "size_bytes": sizes[node]} for node in worker_nodes()
    ]
    assert document["count"] == 2
    record = last_record("tenants.placement")
    assert (record.outcome, record.detail["count"]) == ("succeeded", 2)


def test_placement_prints_a_row_per_tenant_and_per_node(
    pair: tuple[ClusterTenant, ClusterTenant], unblocked: None
) -> None:
    east, west = (member.tenant for member in pair)

    lines = tenants("placement", east.subdomain, west.subdomain).splitlines()

    assert lines[0].split() == ["SUBDOMAIN", "SCHEMA", "NODE", "BYTES", "STATUS"]
    assert [line.split() for line in lines[1:3]] == [
        [
            tenant.subdomain,
            tenant.schema_name,
            str(schema_node(tenant.schema_name)),
            f"{schema_bytes(tenant.schema_name):,}",
            "active",
        ]
        for tenant in (east, west)
    ]
    assert lines[3] == ""
    assert lines[4].split() == ["NODE", "TENANTS", "BYTES"]
    assert [line.split()[:2] for line in lines[5:7]] == [[node, "1"] for node in worker_nodes()]
    assert lines[-1] == f"2 tenant(s); {len(worker_nodes())} worker(s)"


def test_placement_reads_the_whole_fleet_in_fixed_queries(
    pair: tuple[ClusterTenant, ClusterTenant],
    db: None,
    django_assert_num_queries: Any,
) -> None:
    citus_mode()  # asked once per process
    with public_context():
        fleet = Tenant.objects.count()

    # the audit record, the tenants, their placement (one statement) and the workers
    with django_assert_num_queries(4):
        placement = fleet_placement(actor="test")

    assert len(placement.tenants) == fleet >= 2


def test_placement_of_an_unknown_subdomain_is_refused(db: None) -> None:
    error = failing("placement", "nobody-here")
    assert error == {
        "code": "tenant_not_found",
        "message": "no tenant with subdomain 'nobody-here'",
    }


def test_a_schema_still_on_the_coordinator_is_shown_there_and_not_moved(db: None) -> None:
    tenant_id = uuid.uuid4()
    schema_name = schemas.schema_name_for(tenant_id)
    with public_context():
        schemas.schema_create(schema_name)  # on Citus, a local schema
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {schemas.quote(schema_name)}.probe (id bigint)")
        tenant = Tenant.objects.create(
            id=tenant_id,
            name="Local",
            subdomain=run_subdomain(f"{MINE}local"),
            schema_name=schema_name,
            status=Tenant.Status.ACTIVE,
        )

    [row] = json.loads(tenants("placement", tenant.subdomain, "--json"))["tenants"]
    error = failing("move", tenant.subdomain, "--node", worker_nodes()[0])

    assert (row["node"], row["distributed"]) == (COORDINATOR_LOCAL, False)
    assert row["size_bytes"] == 0  # the table is empty and has no index
    assert error["code"] == "schema_not_distributed"
    assert schema_node(schema_name) is None


# -- move ----------------------------------------------------------------------------------


def test_a_move_keeps_the_tenants_pages_and_rows_and_is_audited(
    mover: ClusterTenant, unblocked: None
) -> None:
    tenant = mover.tenant
    source = schema_node(tenant.schema_name)
    target = other_worker(source)
    client = signed_in(mover)
    assert client.get("/projects/").status_code == 200  # the route and the session are warm
    before = rows_of(tenant)
    size = schema_bytes(tenant.schema_name)

    lines = tenants("move", tenant.subdomain, "--node", target).splitlines()

    assert lines[0] == (
        f"moving '{tenant.subdomain}' ({tenant.schema_name}, {size:,} bytes) from {source} "
        f"to {target} with block_writes: its writes wait until the copy ends"
    )
    assert re.fullmatch(
        rf"moved '{tenant.subdomain}' to {re.escape(target)} in \d+\.\d\ds \({size:,} bytes\)",
        lines[1],
    )
    assert len(lines) == 2
    assert schema_node(tenant.schema_name) == target
    # the same process, connection and route cache go on serving it
    home = client.get("/")
    listing = client.get("/projects/")
    created = client.post("/projects/new/", {"name": "After the move", "description": ""})
    assert (home.status_code, listing.status_code, created.status_code) == (200, 200, 302)
    assert all(name.encode() in listing.content for name in before[0])
    assert rows_of(tenant) == (sorted([*before[0], "After the move"]), before[1])
    record = last_record("tenant.move", tenant.subdomain)
    assert record.outcome == "succeeded"
    assert {key: record.detail[key] for key in ("from", "to", "mode", "size_bytes")} == {
        "from": source,
        "to": target,
        "mode": "block_writes",
        "size_bytes": size,
    }


def test_a_logical_move_works_on_a_schema_whose_tables_have_primary_keys(
    mover: ClusterTenant, unblocked: None
) -> None:
    tenant = mover.tenant
    target = other_worker(schema_node(tenant.schema_name))

    document = json.loads(
        tenants("move", tenant.subdomain, "--node", target, "--mode", "logical", "--json")
    )

    assert (document["subdomain"], document["move"]["to"], document["move"]["mode"]) == (
        tenant.subdomain,
        target,
        "logical",
    )
    assert schema_node(tenant.schema_name) == target
    assert rows_of(tenant)[1] == 600


def test_a_move_to_a_node_outside_the_cluster_is_refused(
    pair: tuple[ClusterTenant, ClusterTenant], db: None
) -> None:
    tenant = pair[0].tenant
    node = schema_node(tenant.schema_name)

    error = failing("move", tenant.subdomain, "--node", "127.0.0.1:1")

    assert error == {
        "code": "node_unknown",
        "message": "127.0.0.1:1 is not an active worker of the cluster (see `tenants placement`)",
    }
    assert schema_node(tenant.schema_name) == node
    record = last_record("tenant.move", tenant.subdomain)
    assert (record.outcome, record.detail["error"]) == ("failed", "node_unknown")


def test_a_move_to_the_node_it_is_on_is_refused(
    pair: tuple[ClusterTenant, ClusterTenant], db: None
) -> None:
    tenant = pair[0].tenant
    node = str(schema_node(tenant.schema_name))

    error = failing("move", tenant.subdomain, "--node", node)

    assert error == {
        "code": "tenant_already_on_node",
        "message": f"'{tenant.subdomain}' is on {node} already",
    }


def test_an_archived_tenant_is_not_moved(
    pair: tuple[ClusterTenant, ClusterTenant], db: None
) -> None:
    tenant = pair[0].tenant
    node = schema_node(tenant.schema_name)
    with public_context():
        Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.ARCHIVED)

    error = failing("move", tenant.subdomain, "--node", other_worker(node))

    assert error == {
        "code": "tenant_state_invalid",
        "message": f"'{tenant.subdomain}' is archived; only active or suspended tenants can be "
        "moved.",
    }
    assert schema_node(tenant.schema_name) == node


def test_a_move_is_refused_while_another_operation_holds_the_tenant(
    pair: tuple[ClusterTenant, ClusterTenant],
    db: None,
    lock_holder: psycopg.Connection[Any],
) -> None:
    tenant = pair[0].tenant
    node = schema_node(tenant.schema_name)
    hold_row_lock(lock_holder, tenant)

    error = failing("move", tenant.subdomain, "--node", other_worker(node))

    assert error["code"] == "tenant_busy"
    assert schema_node(tenant.schema_name) == node


def test_a_move_is_refused_while_the_tenant_is_being_archived(
    module_db: None, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    member = committed_tenant("archived", tasks=20)
    tenant = member.tenant
    target = other_worker(member.node)
    # given: an archive that has locked the tenant and is about to dump it
    dumping, resume = threading.Event(), threading.Event()
    writes_stopped = archive._writes_stopped

    def paused(schema_name: str) -> None:
        writes_stopped(schema_name)
        dumping.set()
        resume.wait(60)

    monkeypatch.setattr(archive, "_writes_stopped", paused)
    outcome: list[object] = []

    def archiving() -> None:
        try:
            outcome.append(tenant_archive(actor="test", tenant=tenant))
        except Exception as error:  # reported by the assertion below
            outcome.append(error)
        finally:
            connections.close_all()

    worker = threading.Thread(target=archiving)
    worker.start()
    try:
        assert dumping.wait(60)

        # when: an operator moves it meanwhile
        refused = failing("move", tenant.subdomain, "--node", target)
    finally:
        resume.set()
        worker.join(60)

    # then: the move was refused, the archive went on undisturbed, and now it is archived
    assert refused["code"] == "tenant_busy"
    assert [type(result).__name__ for result in outcome] == ["ArchiveResult"]
    assert failing("move", tenant.subdomain, "--node", target)["code"] == "tenant_state_invalid"


# -- rebalance -----------------------------------------------------------------------------


def worker_bytes() -> dict[str, int]:
    """Bytes of the tenants' schemas per worker, measured afresh."""
    with public_context():
        schema_names = list(Tenant.objects.values_list("schema_name", flat=True))
    totals = dict.fromkeys(worker_nodes(), 0)
    for schema_name in schema_names:
        node = schema_node(schema_name) if schemas.schema_exists(schema_name) else None
        if node in totals:
            totals[node] += schema_bytes(schema_name)
    return totals


def test_a_dry_run_prints_the_plan_and_moves_nothing(imbalanced: list[ClusterTenant]) -> None:
    first = worker_nodes()[0]
    before = worker_bytes()

    document = json.loads(tenants("rebalance", "--dry-run", "--json"))

    assert document["dry_run"] is True
    assert document["moves"] == []
    assert document["nodes_before"] == before
    assert document["plan"]
    assert {step["from"] for step in document["plan"]} == {first}
    spread_before = max(before.values()) - min(before.values())
    after = document["nodes_after"]
    assert max(after.values()) - min(after.values()) < spread_before
    assert all(schema_node(member.tenant.schema_name) == first for member in imbalanced)
    record = last_record("tenants.rebalance")
    assert (record.outcome, record.detail["plan"], record.detail["moves_done"]) == (
        "succeeded",
        document["plan"],
        0,
    )


def test_a_rebalance_stops_at_the_first_failed_move(
    imbalanced: list[ClusterTenant], lock_holder: psycopg.Connection[Any]
) -> None:
    plan = json.loads(tenants("rebalance", "--dry-run", "--json"))["plan"]
    first = plan[0]
    with public_context():
        hold_row_lock(lock_holder, Tenant.objects.get(subdomain=first["subdomain"]))

    error = failing("rebalance")

    assert error["code"] == "rebalance_stopped"
    assert error["message"].startswith(
        f"rebalance stopped at move 1 of {len(plan)} ('{first['subdomain']}' to {first['to']}): "
        "another operation (an archive, a move) is running on"
    )
    assert error["message"].endswith("[tenant_busy]; 0 move(s) done before it stay done")
    assert {schema_node(member.tenant.schema_name) for member in imbalanced} == {worker_nodes()[0]}
    assert last_record("tenants.rebalance").detail["error"] == "rebalance_stopped"


def test_a_rebalance_evens_out_the_workers(imbalanced: list[ClusterTenant]) -> None:
    before = worker_bytes()
    started = timezone.now()

    document = json.loads(tenants("rebalance", "--json"))

    plan = document["plan"]
    assert plan
    assert [(move["subdomain"], move["from"], move["to"]) for move in document["moves"]] == [
        (step["subdomain"], step["from"], step["to"]) for step in plan
    ]
    with public_context():
        moved = {
            step["subdomain"]: schema_node(
                Tenant.objects.get(subdomain=step["subdomain"]).schema_name
            )
            for step in plan
        }
    assert moved == {step["subdomain"]: step["to"] for step in plan}
    after = worker_bytes()
    assert max(after.values()) - min(after.values()) < max(before.values()) - min(before.values())
    with public_context():
        records = AuditRecord.objects.filter(
            action="tenant.move", created_at__gte=started, outcome="succeeded"
        ).values_list("subdomain", flat=True)
    assert sorted(records) == sorted(moved)
    record = last_record("tenants.rebalance")
    assert (record.outcome, record.detail["moves_done"]) == ("succeeded", len(plan))
