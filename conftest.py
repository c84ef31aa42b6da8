"""Root pytest configuration: the tenant fixtures live in tests/fixtures.py."""

from collections.abc import Callable
from typing import Any

import pytest

pytest_plugins = ["tests.fixtures", "tests.infra"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run browser tests last: Playwright keeps an event loop on the main thread."""
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
