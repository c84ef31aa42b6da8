"""Root pytest configuration: the tenant fixtures live in tests/fixtures.py."""

import pytest

pytest_plugins = ["tests.fixtures", "tests.infra"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run browser tests last: Playwright keeps an event loop on the main thread."""
    items.sort(key=lambda item: "browser" in item.keywords)
