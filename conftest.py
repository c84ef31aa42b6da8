"""Root pytest configuration: the tenant fixtures live in tests/fixtures.py."""

import os
from collections.abc import Callable
from typing import Any

import pytest

pytest_plugins = ["tests.fixtures", "tests.infra", "tests.join_guard"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run either the Citus tests or the others; browser tests last.

    Tests marked `citus` need a cluster: they run where CITUS_URL names its coordinator, and
    only they do (the database there is the cluster's, not a test database). Elsewhere they
    are deselected, not skipped, so a run without a cluster looks as it always did.
    Playwright keeps an event loop on the main thread, hence browsers last.
    """
    citus_run = bool(os.environ.get("CITUS_URL"))
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marked = item.get_closest_marker("citus") is not None
        (kept if marked == citus_run else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    items.sort(key=lambda item: "browser" in item.keywords)


@pytest.fixture
def django_assert_num_queries(
    django_assert_num_queries: Callable[..., Any], settings: Any
) -> Callable[..., Any]:
    """pytest-django's exact query count, with the tenancy re-check windows held open.

    A warm request re-proves its schema every TENANT_SCHEMA_RECHECK_SECONDS and its route
    every TENANT_ROUTE_RECHECK_SECONDS; on a slow machine a window can close between a
    test's warm-up and its measured request, adding a query that has nothing to do with
    what the test counts. Tests of the windows themselves set them again.
    """
    settings.TENANT_SCHEMA_RECHECK_SECONDS = 3600
    settings.TENANT_ROUTE_RECHECK_SECONDS = 3600
    return django_assert_num_queries
