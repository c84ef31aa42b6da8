"""Three workspaces used at once through a live server, by the mixed-load benchmark's own
client (scripts/bench/mixed_load.py): pages, forms, files and the API, and each workspace's
key, file link and session tried on another's host; every answer checked for another
workspace's marker, then the database for where the writes landed."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared_apps.tenants.models import Tenant
from tenancy import public_context, tenant_context
from tenant_apps.projects.models import Attachment, Task
from tests.fixtures import tenant_purge

_spec = importlib.util.spec_from_file_location(
    "bench_mixed_load", Path(__file__).resolve().parents[1] / "scripts/bench/mixed_load.py"
)
if _spec is None or _spec.loader is None:
    raise RuntimeError("scripts/bench/mixed_load.py is missing")
mixed_load: Any = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mixed_load  # its dataclasses look their module up by name
_spec.loader.exec_module(mixed_load)

SUBDOMAINS = ["mixload1", "mixload2", "mixload3"]
PEOPLE = 6  # two at once in each workspace
VISITS = 3  # per person, each of twelve requests


@pytest.fixture(params=["local", "s3"])
def files(request: pytest.FixtureRequest, settings: Any, tmp_path: Path) -> str:
    """Where uploads go: local files, or the S3 server (signed links then redirect to it).

    The live server runs in this process, so it stores where the test's settings say.
    """
    if request.param == "s3":
        request.getfixturevalue("s3_storage")  # S3 from here on, as for the suite's other S3 tests
    else:
        local = {"BACKEND": "tenancy.storage.TenantFileSystemStorage"}
        settings.STORAGES = {**settings.STORAGES, "default": local}
        settings.MEDIA_ROOT = tmp_path
    return str(request.param)


@pytest.fixture
def workspaces(committed: Any, files: str) -> Iterator[list[Any]]:
    """Three committed workspaces as the benchmark prepares them; removed afterwards."""
    try:
        yield [mixed_load.workspace_prepare(subdomain) for subdomain in SUBDOMAINS]
    finally:
        for subdomain in SUBDOMAINS:
            tenant_purge(subdomain)


def _port(live_url: str) -> int:
    port = urlsplit(live_url).port
    assert port is not None
    return port


def _tenant(subdomain: str) -> Tenant:
    with public_context():
        return Tenant.objects.get(subdomain=subdomain)


def test_people_working_at_once_in_three_workspaces_see_and_change_only_their_own(
    workspaces: list[Any], files: str, live_url: str
) -> None:
    # when six people make three visits each, two at a time in every workspace
    plan = mixed_load.people_plan(len(workspaces), PEOPLE)
    tally = mixed_load.people_run(_port(live_url), workspaces, plan, visits=VISITS)

    # then every answer was the expected one: no 5xx, no other workspace's marker
    assert [str(failure) for failure in tally.shown] == []
    assert sum(tally.failures.values()) == 0
    assert tally.throttled == 0  # no API budget comes near: every API answer was checked
    answered = {step: len(tally.by_step.get(step, [])) for step in mixed_load.STEPS}
    assert answered == dict.fromkeys(mixed_load.STEPS, PEOPLE * VISITS)
    if files == "s3":  # the signed link sends the browser on to S3, whose answer is checked too
        assert len(tally.by_step["file, from storage"]) == PEOPLE * VISITS
    # and every task and file the server accepted is in its own workspace, and only there
    assert {sub: len(titles) for sub, titles in tally.created.items()} == dict.fromkeys(
        SUBDOMAINS, 2 * VISITS
    )
    for workspace in workspaces:
        with tenant_context(_tenant(workspace.subdomain)):
            titles = set(
                Task.objects.filter(project_id=workspace.inbox_id).values_list("title", flat=True)
            )
            stored = set(Attachment.objects.values_list("original_name", flat=True))
        assert titles == set(tally.created[workspace.subdomain])
        prepared = f"{workspace.marker}brief.txt"
        assert stored == {prepared, *tally.uploaded[workspace.subdomain]}
    assert mixed_load.workspaces_verify(SUBDOMAINS, tally.created, tally.uploaded) == []


@pytest.mark.parametrize("files", ["local"], indirect=True)
def test_the_checks_catch_an_answer_from_another_workspace(
    workspaces: list[Any], live_url: str
) -> None:
    # given a person who expects mixload1 but whose requests reach mixload2 (as a server
    # routing to the wrong tenant would answer them)
    first, second = workspaces[0], workspaces[1]
    misrouted = dataclasses.replace(second, subdomain=first.subdomain)

    # when that person makes one visit
    tally = mixed_load.people_run(_port(live_url), [misrouted], [[0]], visits=1)

    # then the pages and the API are counted as cross-tenant answers, with their requests
    # (home, project list, project page, the file's content and the API list)
    assert tally.failures["cross-tenant"] == 5
    assert tally.failures["server error"] == 0
    assert "GET mixload2.localhost/projects/" in [
        str(failure).split(" -> ")[0].split(": ", 1)[1] for failure in tally.shown
    ]
    # and the database check finds mixload1's task written into mixload2
    problems = mixed_load.workspaces_verify(SUBDOMAINS[:2], tally.created, tally.uploaded)
    assert any(problem.startswith("mixload2 holds 'm-mixload1-task-") for problem in problems)
