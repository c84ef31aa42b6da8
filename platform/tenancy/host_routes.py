"""Host → tenant, without a database query per request once warm.

Each process keeps the mapping in memory. A change to a tenant or domain clears this
process's copy at once and, on commit, bumps a shared version in Redis; other processes
compare that version at most every TENANT_ROUTE_RECHECK_SECONDS and drop their copy
when it moved.

Known hosts and unknown hosts are kept apart, each map bounded and each full map making
room by forgetting its oldest entry: a fleet larger than the bound costs a query only for
the hosts that fell out, never a reload of every host (clearing a full map did that, and
made every request of a 10,000-tenant fleet a cold one), and a flood of random subdomains
churns only the map of unknown hosts, so it cannot push real tenants out.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from django_tenants.utils import get_tenant_domain_model

from core.metrics import route_lookup_count
from tenancy.context import TenantRef, public_context

logger = logging.getLogger(__name__)

VERSION_KEY = "tenancy:routes:version"
# About 0.5 KB per known host: 100,000 tenants' hosts cost a process some 50 MB.
MAX_KNOWN_HOSTS = 100_000
MAX_UNKNOWN_HOSTS = 10_000


@dataclass(frozen=True, slots=True)
class Route:
    """Where a host leads: the public site, a tenant, or nowhere (tenant is None)."""

    is_public: bool
    tenant: TenantRef | None = None


PUBLIC_ROUTE = Route(is_public=True)
UNKNOWN_ROUTE = Route(is_public=False)


def normalize_host(host: str) -> str:
    """Drop port and trailing dot, lower-case: `Acme.Example.com.:443` → `acme.example.com`."""
    if host.startswith("["):  # IPv6 literal
        return host.split("]")[0].lower() + "]"
    return host.rsplit(":", 1)[0].rstrip(".").lower() if ":" in host else host.rstrip(".").lower()


def _load(host: str) -> Route:
    root = settings.ROOT_DOMAIN
    if host in (root, f"www.{root}"):
        return PUBLIC_ROUTE
    with public_context():
        domain = (
            get_tenant_domain_model().objects.select_related("tenant").filter(domain=host).first()
        )
    if domain is None:
        return UNKNOWN_ROUTE
    return Route(is_public=False, tenant=TenantRef.of(domain.tenant))


class HostRoutes:
    """The per-process map of host to route, checked against the shared version."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}  # insertion order: the oldest comes first
        self._unknown: dict[str, Route] = {}
        self._version: str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def resolve(self, host: str) -> Route:
        self._recheck_if_due()
        route = self._routes.get(host) or self._unknown.get(host)
        route_lookup_count(hit=route is not None)
        if route is None:
            route = _load(host)
            known = route is not UNKNOWN_ROUTE
            remembered = self._routes if known else self._unknown
            with self._lock:
                if len(remembered) >= (MAX_KNOWN_HOSTS if known else MAX_UNKNOWN_HOSTS):
                    remembered.pop(next(iter(remembered)), None)
                remembered[host] = route
        return route

    def forget(self) -> None:
        with self._lock:
            self._routes.clear()
            self._unknown.clear()

    def _recheck_if_due(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < settings.TENANT_ROUTE_RECHECK_SECONDS:
            return
        try:
            version = caches["platform"].get(VERSION_KEY)
        except Exception:  # Redis unreachable: trust the database, not a stale copy
            logger.warning("route version unavailable; reloading hosts from the database")
            self.forget()
            return
        with self._lock:
            if version != self._version:
                self._routes.clear()
                self._unknown.clear()
                self._version = version
            self._checked_at = now


ROUTES = HostRoutes()


def resolve_host(host: str) -> Route:
    """Return where a request for `host` (as sent, port allowed) should go."""
    return ROUTES.resolve(normalize_host(host))


def routes_changed() -> None:
    """Forget cached hosts here now, and in every process once the change commits."""
    ROUTES.forget()

    def announce() -> None:
        ROUTES.forget()
        try:
            caches["platform"].set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        except Exception:
            logger.exception("could not announce a routing change; other processes lag")

    transaction.on_commit(announce)
