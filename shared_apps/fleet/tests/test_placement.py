"""`tenants placement|move|rebalance` on a plain PostgreSQL server, and the rebalance plan.

Outside Citus mode every verb refuses with `citus_not_enabled` and changes nothing; bad
arguments are refused before anything is read. The plan is arithmetic on placements, so
it is checked here without a cluster (tests/citus/test_placement.py moves real tenants).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from shared_apps.audit.models import AuditRecord
from shared_apps.fleet.errors import ArgumentsInvalidError
from shared_apps.fleet.placement import Node, TenantPlacement, rebalance_plan
from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tests.fixtures import CliResult

ONE, TWO, THREE = Node("10.0.0.1", 5432), Node("10.0.0.2", 5432), Node("10.0.0.3", 5432)
MB = 1_000_000


def failing(*args: str) -> tuple[dict[str, Any], str]:
    """Run a verb that must fail with --json; return its JSON error and the one-line error."""
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("tenants", *args, "--json", stdout=out)
    [line] = out.getvalue().splitlines()
    error: dict[str, Any] = json.loads(line)["error"]
    return error, str(raised.value)


def last_record(action: str) -> AuditRecord:
    with public_context():
        return AuditRecord.objects.filter(action=action).latest("created_at")


@pytest.mark.parametrize(
    ("args", "action"),
    [
        (["placement"], "tenants.placement"),
        (["placement", "alpha"], "tenants.placement"),
        (["move", "alpha", "--node", "10.0.0.2:5432"], "tenant.move"),
        (["rebalance"], "tenants.rebalance"),
        (["rebalance", "--dry-run"], "tenants.rebalance"),
    ],
)
def test_outside_citus_mode_each_verb_is_refused(
    tenant_a: Tenant, args: list[str], action: str
) -> None:
    error, line = failing(*args)

    assert error["code"] == "citus_not_enabled"
    assert error["message"] == line
    assert "not a Citus coordinator" in line
    record = last_record(action)
    assert (record.outcome, record.detail["error"]) == ("failed", "citus_not_enabled")


def test_a_refused_move_changes_nothing(tenant_a: Tenant) -> None:
    with public_context():
        before = Tenant.objects.values().get(pk=tenant_a.pk)

    failing("move", "alpha", "--node", "10.0.0.2:5432")

    with public_context():
        assert Tenant.objects.values().get(pk=tenant_a.pk) == before


def test_the_text_refusal_is_one_line(tenant_a: Tenant) -> None:
    with pytest.raises(CommandError) as raised:
        call_command("tenants", "placement", stdout=io.StringIO())
    assert str(raised.value).count("\n") == 0
    assert str(raised.value).startswith("the database is not a Citus coordinator")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["move", "alpha", "--node", "nowhere"],
            "arguments_invalid",
            "--node must be HOST:PORT as the cluster names its workers, e.g. 10.0.0.5:5432 "
            "(got 'nowhere')",
        ),
        (
            ["move", "alpha", "--node", "10.0.0.2:99999"],
            "arguments_invalid",
            "--node must be HOST:PORT as the cluster names its workers, e.g. 10.0.0.5:5432 "
            "(got '10.0.0.2:99999')",
        ),
        (
            ["move", "nobody", "--node", "10.0.0.2:5432"],
            "tenant_not_found",
            "no tenant with subdomain 'nobody'",
        ),
        (
            ["rebalance", "--tolerance", "150"],
            "arguments_invalid",
            "--tolerance must be between 0 and 100 (percent)",
        ),
    ],
)
def test_bad_arguments_are_refused_before_citus_is_asked(
    tenant_a: Tenant, args: list[str], code: str, message: str
) -> None:
    error, _ = failing(*args)
    assert error == {"code": code, "message": message}


@pytest.mark.parametrize(
    "args",
    [
        ["move", "alpha", "--json"],  # no --node
        ["move", "alpha", "--node", "10.0.0.2:5432", "--mode", "fast", "--json"],
        ["rebalance", "--tolerance", "lots", "--json"],
    ],
)
def test_command_lines_that_do_not_parse_are_json_errors(
    manage_cli: Callable[..., CliResult], args: list[str]
) -> None:
    result = manage_cli("tenants", *args)

    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["code"] == "arguments_invalid"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("10.0.0.5:5432", Node("10.0.0.5", 5432)),
        ("worker-2.internal:6432", Node("worker-2.internal", 6432)),
        (" 127.0.0.1:9701 ", Node("127.0.0.1", 9701)),
        ("[::1]:5432", Node("::1", 5432)),
    ],
)
def test_a_node_is_host_and_port(text: str, node: Node) -> None:
    assert Node.parse(text) == node
    assert str(node) == text.strip()


@pytest.mark.parametrize("text", ["", "10.0.0.5", ":5432", "10.0.0.5:", "10.0.0.5:0", "a b:1"])
def test_a_node_without_host_or_port_is_refused(text: str) -> None:
    with pytest.raises(ArgumentsInvalidError):
        Node.parse(text)


# -- the rebalance plan --------------------------------------------------------------------


def placed(subdomain: str, node: Node | None, size: int, status: str = "active") -> TenantPlacement:
    tenant = Tenant(subdomain=subdomain, name=subdomain, status=status)
    return TenantPlacement(tenant=tenant, node=node, size_bytes=size, has_schema=True)


def moves_of(plan: list[Any]) -> list[tuple[str, str, str]]:
    return [(step.placement.tenant.subdomain, str(step.source), str(step.target)) for step in plan]


def test_even_workers_need_no_move() -> None:
    placements = [placed("a", ONE, 5 * MB), placed("b", TWO, 5 * MB)]

    plan, before, after = rebalance_plan(placements, [ONE, TWO])

    assert plan == []
    assert before == after == {ONE: 5 * MB, TWO: 5 * MB}


def test_a_new_empty_worker_takes_the_tenants_that_even_it_out() -> None:
    placements = [
        placed("big", ONE, 6 * MB),
        placed("mid", ONE, 3 * MB),
        placed("small", ONE, 1 * MB),
        placed("other", TWO, 5 * MB),
    ]

    plan, before, after = rebalance_plan(placements, [ONE, TWO, THREE])

    # 10, 5 and 0 MB: of the fullest's tenants, "big" best halves the gap to the emptiest
    assert before == {ONE: 10 * MB, TWO: 5 * MB, THREE: 0}
    assert moves_of(plan) == [("big", "10.0.0.1:5432", "10.0.0.3:5432")]
    assert after == {ONE: 4 * MB, TWO: 5 * MB, THREE: 6 * MB}


def test_the_plan_moves_until_within_the_tolerance() -> None:
    placements = [placed(f"t{n}", ONE, MB) for n in range(10)]

    plan, _, after = rebalance_plan(placements, [ONE, TWO], tolerance=0.0)

    assert len(plan) == 5
    assert after == {ONE: 5 * MB, TWO: 5 * MB}
    assert {step.target for step in plan} == {TWO}


def test_within_the_tolerance_nothing_moves() -> None:
    placements = [placed("a", ONE, 105 * MB), placed("b", TWO, 95 * MB)]

    plan, _, _ = rebalance_plan(placements, [ONE, TWO], tolerance=0.10)

    assert plan == []


def test_a_tenant_larger_than_the_gap_stays() -> None:
    placements = [placed("huge", ONE, 50 * MB), placed("a", TWO, 20 * MB)]

    plan, _, _ = rebalance_plan(placements, [ONE, TWO], tolerance=0.0)

    assert plan == []  # moving it would only turn the imbalance around


def test_archived_and_provisioning_tenants_count_but_stay() -> None:
    placements = [
        placed("archived", ONE, 8 * MB, status="archived"),
        placed("new", ONE, 2 * MB, status="provisioning"),
        placed("active", ONE, 2 * MB),
        placed("suspended", ONE, 1 * MB, status="suspended"),
    ]

    plan, before, _ = rebalance_plan(placements, [ONE, TWO], tolerance=0.0)

    assert before[ONE] == 13 * MB
    assert moves_of(plan) == [
        ("active", "10.0.0.1:5432", "10.0.0.2:5432"),
        ("suspended", "10.0.0.1:5432", "10.0.0.2:5432"),
    ]


def test_tenants_on_the_coordinator_are_left_alone() -> None:
    placements = [placed("local", None, 9 * MB), placed("a", ONE, 2 * MB)]

    plan, before, _ = rebalance_plan(placements, [ONE, TWO], tolerance=0.0)

    assert before == {ONE: 2 * MB, TWO: 0}
    assert plan == []  # "a" alone: moving it only swaps the two workers


def test_a_draining_worker_is_emptied_first_then_the_rest_evened_out() -> None:
    placements = [
        placed("small", THREE, 1 * MB),
        placed("big", THREE, 4 * MB),
        placed("stuck", THREE, 2 * MB, status="provisioning"),
        placed("a", ONE, 3 * MB),
        placed("b", ONE, 3 * MB),
        placed("c", ONE, 3 * MB),
    ]

    plan, before, after = rebalance_plan(placements, [ONE, TWO], draining=[THREE], tolerance=0.0)

    assert before == {ONE: 9 * MB, TWO: 0, THREE: 7 * MB}
    assert moves_of(plan) == [
        ("big", "10.0.0.3:5432", "10.0.0.2:5432"),
        ("small", "10.0.0.3:5432", "10.0.0.2:5432"),
        ("a", "10.0.0.1:5432", "10.0.0.2:5432"),
    ]
    # "stuck" stays: only active and suspended tenants move
    assert after == {ONE: 6 * MB, TWO: 8 * MB, THREE: 2 * MB}


def test_one_worker_has_nothing_to_balance() -> None:
    plan, before, after = rebalance_plan([placed("a", ONE, MB)], [ONE])
    assert (plan, before, after) == ([], {ONE: MB}, {ONE: MB})


def test_when_the_fullest_has_nothing_that_fits_the_next_fullest_gives() -> None:
    placements = [
        placed("huge", ONE, 10 * MB),
        placed("a", TWO, 3 * MB),
        placed("b", TWO, 3 * MB),
    ]

    plan, _, after = rebalance_plan(placements, [ONE, TWO, THREE], tolerance=0.0)

    assert moves_of(plan) == [("a", "10.0.0.2:5432", "10.0.0.3:5432")]
    assert after == {ONE: 10 * MB, TWO: 3 * MB, THREE: 3 * MB}
