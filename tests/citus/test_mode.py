"""The Citus mode is on where the database is a Citus coordinator, or where it is set."""

from typing import Any

import pytest

from tenancy.citus import citus_mode

pytestmark = pytest.mark.citus


def test_citus_mode_is_detected_on_a_coordinator(db: None) -> None:
    assert citus_mode() is True


def test_citus_mode_off_by_setting_on_a_coordinator(db: None, settings: Any) -> None:
    settings.CITUS_MODE = "off"
    assert citus_mode() is False
