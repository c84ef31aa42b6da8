"""Root pytest configuration: the tenant fixtures live in tests/fixtures.py."""

pytest_plugins = ["tests.fixtures"]
