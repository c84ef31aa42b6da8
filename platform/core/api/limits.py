"""Request budgets of the workspace API, applied by every TenantApi (core.api.views).

A signed-in request counts against its credential (the API key, or the person for a
browser session) and against the workspace, whose budget comes from its plan. A request
without valid credentials counts against its address only (core.http.client_ip, trusted
proxies only): strangers cannot spend a workspace's budget, and guessing keys is throttled.

Counting is a fixed window per counter that opens with its first request: one Redis
transaction (MULTI/EXEC) does `SET key 0 EX 60 NX`, `INCR key` and `PTTL key` for every
counter of the request (and reads the workspace's cached budget), so concurrent requests
are counted exactly, once each, in one round trip. Keys go through the default cache's key
function, so they are namespaced by the active workspace like every cache key
(tenancy.cache). django-ratelimit (core.ratelimit) counts the page forms; it takes two
round trips per counter and says nothing of the other counters, which the RateLimit
headers need.

Every answer carries the fields of draft-ietf-httpapi-ratelimit-headers-06 (the last draft
with separate fields): `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
describe the counter closest to running out; `RateLimit-Policy` lists every budget applied.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.utils.module_loading import import_string
from django_redis import get_redis_connection  # type: ignore[import-untyped]

from core.http import client_ip
from core.ratelimit import ThrottledError

WINDOW_SECONDS = 60
KEY_PREFIX = "rl:api"
# How long the workspace's budget, read from its plan, is trusted (a plan change lands this late).
BUDGET_CACHE_SECONDS = 60
UNLIMITED = "unlimited"
BUDGET_KEY = f"{KEY_PREFIX}:workspace-budget"

# Which budget a refusal names, in words a client's developer can act on.
REFUSALS = {
    "key": "This API key's budget of {limit} requests a minute is spent",
    "user": "Your budget of {limit} API requests a minute is spent",
    "address": "Too many requests from this address without valid credentials ({limit} a minute)",
    "workspace": "This workspace's plan allows {limit} API requests a minute, all spent",
}


@dataclass(frozen=True)
class Budget:
    """One counter: what it counts (`name`, `ident`) and how many requests a window allows."""

    name: str
    ident: str
    limit: int | None  # None: counted, never refused

    @property
    def key(self) -> str:
        return (
            f"{KEY_PREFIX}:{self.name}:{self.ident}" if self.ident else f"{KEY_PREFIX}:{self.name}"
        )


@dataclass(frozen=True)
class Usage:
    budget: Budget
    count: int
    reset: int  # seconds until the window closes

    @property
    def remaining(self) -> int | None:
        limit = self.budget.limit
        return None if limit is None else max(0, limit - self.count)

    @property
    def is_exceeded(self) -> bool:
        limit = self.budget.limit
        return limit is not None and self.count > limit


def _redis() -> Any:
    return get_redis_connection("default")


def _key(name: str) -> str:
    return str(caches["default"].make_key(name))


def budgets_count(budgets: list[Budget]) -> list[Usage]:
    """Count one request against every budget, atomically and in one round trip."""
    return _count(budgets)[0]


def _count(budgets: list[Budget], *, read: str | None = None) -> tuple[list[Usage], Any]:
    """Count against `budgets`, reading the key `read` in the same round trip."""
    pipe = _redis().pipeline(transaction=True)
    if read is not None:
        pipe.get(_key(read))
    for budget in budgets:
        key = _key(budget.key)
        pipe.set(key, 0, ex=WINDOW_SECONDS, nx=True)
        pipe.incr(key)
        pipe.pttl(key)
    replies = pipe.execute()
    value = replies.pop(0) if read is not None else None
    usages = []
    for index, budget in enumerate(budgets):
        count, left_ms = replies[3 * index + 1], replies[3 * index + 2]
        if left_ms == -1:  # a counter without expiry (written by hand?) would never reopen
            _redis().expire(_key(budget.key), WINDOW_SECONDS)
        reset = math.ceil(left_ms / 1000) if left_ms > 0 else WINDOW_SECONDS
        usages.append(Usage(budget=budget, count=int(count), reset=reset))
    return usages, value


def _workspace_limit(cached: bytes | None) -> int | None:
    """The active workspace's requests a minute: as cached, else from its plan (then cached
    for a minute)."""
    if cached is not None:
        text = cached.decode()
        return None if text == UNLIMITED else int(text)
    budget: Callable[[], int | None] = import_string(settings.API_WORKSPACE_BUDGET)
    limit = budget()
    _redis().set(
        _key(BUDGET_KEY), UNLIMITED if limit is None else str(limit), ex=BUDGET_CACHE_SECONDS
    )
    return limit


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def api_request_count(request: Any, *, signed_in: bool) -> list[Usage]:
    """Count the request against its budgets; return how far each one is spent.

    Signed in: its credential (the API key, else the person) and the workspace, whose limit
    is read in the same round trip. Otherwise: its address.
    """
    limits: dict[str, int] = settings.API_RATE_LIMITS
    if not signed_in:
        return budgets_count([Budget("address", _digest(client_ip(request)), limits["address"])])
    key_id = getattr(request.auth, "pk", None)
    credential = (
        Budget("key", str(key_id), limits["key"])
        if key_id is not None
        else Budget("user", str(request.user.pk), limits["user"])
    )
    workspace = Budget("workspace", "", None)
    (by_credential, by_workspace), cached = _count([credential, workspace], read=BUDGET_KEY)
    limit = _workspace_limit(cached)
    return [by_credential, replace(by_workspace, budget=replace(workspace, limit=limit))]


def api_budgets_require(usages: list[Usage]) -> None:
    """Refuse a request that took a budget past its limit.

    Raises:
        ThrottledError: a budget is spent; `retry_after` is when the last one spent reopens.
    """
    spent = [usage for usage in usages if usage.is_exceeded]
    if not spent:
        return
    wait = max(usage.reset for usage in spent)
    first = spent[0].budget
    reason = REFUSALS[first.name].format(limit=first.limit)
    raise ThrottledError(f"{reason}; try again in {wait} seconds.", retry_after=wait)


def ratelimit_headers(usages: list[Usage]) -> dict[str, str]:
    """The RateLimit fields (draft-06) for these usages; none when no budget has a limit."""
    limited = [usage for usage in usages if usage.budget.limit is not None]
    if not limited:
        return {}
    # The counter closest to running out; on a tie, the one that stays closed longest.
    closest = min(limited, key=lambda usage: (usage.remaining, -usage.reset))
    return {
        "RateLimit-Limit": str(closest.budget.limit),
        "RateLimit-Remaining": str(closest.remaining),
        "RateLimit-Reset": str(closest.reset),
        "RateLimit-Policy": ", ".join(
            f'{usage.budget.limit};w={WINDOW_SECONDS};comment="{usage.budget.name}"'
            for usage in limited
        ),
    }
