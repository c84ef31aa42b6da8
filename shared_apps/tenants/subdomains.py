"""The rules a subdomain must follow (documented in docs/tenants.md)."""

from __future__ import annotations

import re

from django.conf import settings

from shared_apps.tenants.errors import SubdomainInvalidError, SubdomainReservedError

MIN_LENGTH = 3
# A DNS label allows 63; shorter keeps hosts readable and leaves room in e-mail addresses.
MAX_LENGTH = 40
# Letters, digits and single hyphens; starts with a letter; does not end with a hyphen.
SUBDOMAIN_PATTERN = r"^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$"
_SUBDOMAIN = re.compile(SUBDOMAIN_PATTERN)

DEFAULT_RESERVED = frozenset(
    {
        "www",
        "api",
        "admin",
        "app",
        "apps",
        "mail",
        "email",
        "smtp",
        "imap",
        "pop",
        "ftp",
        "static",
        "media",
        "assets",
        "cdn",
        "public",
        "information_schema",
        "postgres",
        "root",
        "support",
        "help",
        "status",
        "billing",
        "account",
        "accounts",
        "login",
        "signup",
        "auth",
        "dashboard",
        "docs",
        "blog",
        "dev",
        "staging",
        "test",
        "demo-admin",
        "ns1",
        "ns2",
        "localhost",
        "platform",
        "system",
        "internal",
    }
)


def reserved_subdomains() -> frozenset[str]:
    extra = getattr(settings, "TENANT_RESERVED_SUBDOMAINS", ())
    return DEFAULT_RESERVED | {name.lower() for name in extra}


def subdomain_clean(raw: str) -> str:
    """Return the canonical subdomain for user input, or raise with the rule it breaks.

    Raises:
        SubdomainInvalidError: the shape is wrong (characters, length, hyphens).
        SubdomainReservedError: the name is kept for the platform.
    """
    subdomain = raw.strip().lower()
    if not MIN_LENGTH <= len(subdomain) <= MAX_LENGTH:
        raise SubdomainInvalidError(
            f"The subdomain must have {MIN_LENGTH} to {MAX_LENGTH} characters.", field="subdomain"
        )
    if not _SUBDOMAIN.match(subdomain):
        raise SubdomainInvalidError(
            "The subdomain may use letters, digits and single hyphens; it must start with "
            "a letter and not end with a hyphen.",
            field="subdomain",
        )
    if subdomain in reserved_subdomains() or subdomain.startswith("pg_"):
        raise SubdomainReservedError(f"The subdomain '{subdomain}' is reserved.", field="subdomain")
    return subdomain
