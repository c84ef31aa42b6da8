from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tenant_apps.apikeys.authentication import ApiKeyScopePermission
from tenant_apps.apikeys.models import ApiKey


class _WorkView:
    api_key_scope = ApiKey.Scope.WRITE


class _UndeclaredView:
    pass


def _allowed(method: str, scopes: list[str], view: object) -> bool:
    # The permission reads only the method and the key DRF authenticated the request with.
    request: Any = SimpleNamespace(method=method.upper(), auth=ApiKey(scopes=scopes))
    return ApiKeyScopePermission().has_permission(request, view)


@pytest.mark.parametrize(
    ("method", "scopes", "view", "allowed"),
    [
        ("get", ["read"], _WorkView(), True),
        ("post", ["read"], _WorkView(), False),
        ("post", ["write"], _WorkView(), True),
        ("delete", ["write"], _WorkView(), True),
        ("post", ["write"], _UndeclaredView(), False),  # not work: needs admin
        ("post", ["admin"], _UndeclaredView(), True),
        ("get", ["admin"], _UndeclaredView(), True),
    ],
)
def test_scopes_allow_what_they_say(
    method: str, scopes: list[str], view: object, allowed: bool
) -> None:
    assert _allowed(method, scopes, view) is allowed


def test_requests_without_a_key_are_not_its_business() -> None:
    request: Any = SimpleNamespace(method="POST", auth=None)  # a signed-in person
    assert ApiKeyScopePermission().has_permission(request, _UndeclaredView()) is True
