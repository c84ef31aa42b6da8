"""Refuse a transaction-mode pooler between the platform and PostgreSQL.

The backend sets `search_path` as session state and remembers what the server session
has (tenancy.db.base). A pooler in transaction mode (PgBouncer `pool_mode=transaction` or
`statement`, RDS Proxy without pinning) hands a server connection to another client
between transactions, so tenant A's `search_path` would serve tenant B's next query.
Session pooling and Django's own psycopg pool (DATABASE_POOL=true) are safe: a server
session belongs to one client for as long as it is connected.

How it is detected (`pooler_probe`), on connections of its own:

1. Client A runs `SELECT pg_backend_pid()` outside a transaction and stays connected, idle.
2. Client B opens a transaction and runs the same. Under session pooling (or no pooler)
   A's server session is A's until A disconnects, so B can never see A's pid. Under
   transaction pooling A holds no server between transactions, and PgBouncer hands out
   the most recently released server first (LIFO, its default): B gets A's. Same pid:
   refused.
3. While B holds its transaction, A asks again. A different pid means A's transactions
   run on different server sessions: refused.

Comparing the pids of two transactions of one client alone (step 3 without step 2) is
not enough: with LIFO reuse and no other traffic, the client gets its own server back
and the pooler stays invisible. `SHOW pool_mode` needs PgBouncer's admin console, which
the application's role should not have, and RDS Proxy has none. The probe never gives a
false alarm (a server session is one client's for as long as it is connected, unless
something multiplexes it); under heavy traffic a non-LIFO pooler could slip past one
probe, so each process repeats it (DATABASE_POOLER_RECHECK_SECONDS) through /readyz.

Where it runs: on the first database connection of each process (`connection_created`),
so a command that never touches the database (`manage.py check`) is not affected, and in
/readyz. `manage.py check --database default` runs it as a system check.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

FIX = (
    "use PgBouncer pool_mode=session or DATABASE_POOL=true (Django's psycopg pool) "
    "with a direct connection"
)
PROBE_TIMEOUT_SECONDS = 5.0
NO_DB_ALIAS = "__no_db__"


class UnsafePoolerError(ImproperlyConfigured):
    """A transaction-mode pooler sits in front of the database: tenants would leak."""


@dataclass(frozen=True)
class PoolerVerdict:
    safe: bool
    reason: str = ""

    def message(self) -> str:
        return f"transaction-mode connection pooler detected ({self.reason}): {FIX}"


def _pid(connection: Any) -> int:
    row = connection.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()
    return int(row[0])


def _probe(params: dict[str, Any]) -> PoolerVerdict:
    import psycopg

    params = {**params, "connect_timeout": max(1, round(PROBE_TIMEOUT_SECONDS))}
    with psycopg.connect(**params, autocommit=True) as first:
        pid = _pid(first)
        # Not autocommit: its first statement opens a transaction that holds its server.
        with psycopg.connect(**params, autocommit=False) as other:
            try:
                if _pid(other) == pid:
                    return PoolerVerdict(False, "another client was given this client's session")
                if _pid(first) != pid:
                    return PoolerVerdict(False, "one client's transactions ran in two sessions")
            finally:
                other.rollback()
    return PoolerVerdict(True)


def pooler_probe(
    params: dict[str, Any], *, timeout: float = PROBE_TIMEOUT_SECONDS
) -> PoolerVerdict:
    """Find out whether connections with `params` go through a transaction-mode pooler.

    Raises:
        TimeoutError: the probe did not finish in `timeout` (a pooler out of servers).
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pooler-probe")
    try:
        return pool.submit(_probe, params).result(timeout=timeout)
    except FutureTimeout:
        raise TimeoutError("pooler probe timed out") from None
    finally:
        pool.shutdown(wait=False)


_verdicts: dict[str, tuple[PoolerVerdict, float]] = {}
_lock = threading.Lock()


def connection_params(wrapper: Any) -> dict[str, Any]:
    """The psycopg parameters of a Django connection (what the probe connects with)."""
    params: dict[str, Any] = wrapper.get_connection_params()
    return params


def pooler_verdict(wrapper: Any, *, max_age: float | None = None) -> PoolerVerdict:
    """This process's verdict for the wrapper's database, probed again when older than max_age.

    Raises:
        TimeoutError, psycopg.Error: the probe could not finish (nothing is remembered).
    """
    alias = wrapper.alias
    now = time.monotonic()
    with _lock:
        known = _verdicts.get(alias)
    if known is not None and (max_age is None or now - known[1] < max_age):
        return known[0]
    verdict = pooler_probe(connection_params(wrapper))
    with _lock:
        _verdicts[alias] = (verdict, now)
    if not verdict.safe:
        logger.critical("unsafe database pooler", extra={"detail": verdict.message()})
    return verdict


def pooler_verdicts_forget() -> None:
    with _lock:
        _verdicts.clear()


def refuse_unsafe_pooler(sender: Any, connection: Any, **_kwargs: Any) -> None:
    """connection_created: refuse every connection of a process behind a transaction pooler.

    The new connection is closed before the error propagates, so no query reaches it and
    the next attempt (which is refused again) cannot reuse it.
    """
    if connection.vendor != "postgresql" or connection.alias == NO_DB_ALIAS:
        return
    try:
        verdict = pooler_verdict(connection)
    except Exception:
        # Could not tell (the server is at its connection limit?): /readyz asks again.
        logger.warning("pooler check could not finish", exc_info=True)
        return
    if verdict.safe:
        return
    raw, connection.connection = connection.connection, None
    if raw is not None:
        raw.close()
    raise UnsafePoolerError(verdict.message())


def pooler_readiness_check() -> None:
    """/readyz: the database is not reached through a transaction-mode pooler."""
    from django.db import DEFAULT_DB_ALIAS, connections

    from core.health import CheckFailedError

    verdict = pooler_verdict(
        connections[DEFAULT_DB_ALIAS], max_age=settings.DATABASE_POOLER_RECHECK_SECONDS
    )
    if not verdict.safe:
        raise CheckFailedError(verdict.message())


@checks.register(checks.Tags.database)
def pooler_system_check(databases: Any = None, **_kwargs: Any) -> list[checks.CheckMessage]:
    """`manage.py check --database default`: refuse a transaction-mode pooler."""
    from django.db import connections

    problems: list[checks.CheckMessage] = []
    for alias in databases or ():
        wrapper = connections[alias]
        if wrapper.vendor != "postgresql":
            continue
        try:
            verdict = pooler_verdict(wrapper, max_age=0)
        except Exception as error:
            problems.append(
                checks.Warning(
                    f"could not tell whether a pooler is in front of {alias!r}: "
                    f"{type(error).__name__}",
                    id="tenancy.W011",
                )
            )
            continue
        if not verdict.safe:
            problems.append(
                checks.Error(
                    f"database {alias!r}: transaction-mode connection pooler detected "
                    f"({verdict.reason}); session state such as search_path would pass "
                    "from one tenant to another",
                    hint=FIX,
                    id="tenancy.E010",
                )
            )
    return problems
