"""Where a webhook may be sent: public addresses only, checked at every attempt.

A workspace owner chooses the URL, so without this a webhook is a way to make the platform
call its own network: the cloud metadata service (169.254.169.254), Redis, PostgreSQL, an
admin port on loopback. `target_resolve` resolves the host once, refuses the URL unless
*every* address it resolves to is public, and returns those addresses; the transport then
connects to a checked address (never resolving again), so a DNS answer that changes
between the check and the connection (rebinding) cannot point the request inward.

`WEBHOOKS_ALLOW_PRIVATE_TARGETS` switches the address check off (tests and local
development, whose receivers listen on loopback); `WEBHOOKS_ALLOW_PLAIN_HTTP` allows
`http://` beside `https://`. Both are off in production.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from tenant_apps.webhooks.errors import WebhookUrlInvalidError, WebhookUrlNotAllowedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

URL_MAX_LENGTH = 2000
DEFAULT_PORTS = {"https": 443, "http": 80}
# IPv6 prefixes that carry an IPv4 address a gateway may forward to (NAT64, RFC 6052).
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII (IDNA) form, as sent in `Host` and for TLS
    port: int
    path: str  # path and query, as sent
    addresses: tuple[IPAddress, ...]  # every address the host resolved to, all checked

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    path: str


def url_parse(url: str) -> ParsedUrl:
    """Check the shape of a webhook URL and split it.

    Raises:
        WebhookUrlInvalidError: not an absolute https URL with a host, or it has
            credentials, a fragment, spaces or control characters.
    """
    allowed = ("https", "http") if settings.WEBHOOKS_ALLOW_PLAIN_HTTP else ("https",)
    if not url or len(url) > URL_MAX_LENGTH:
        raise WebhookUrlInvalidError(
            f"Give a URL of at most {URL_MAX_LENGTH} characters.", field="url"
        )
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise WebhookUrlInvalidError("The URL has spaces or control characters.", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlInvalidError("This is not a valid URL.", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in allowed:
        raise WebhookUrlInvalidError("Webhook URLs start with https://.", field="url")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlInvalidError(
            "Leave credentials out of the URL; check the signature instead.", field="url"
        )
    if parts.fragment or url.endswith("#"):
        raise WebhookUrlInvalidError("Leave the #fragment out of the URL.", field="url")
    if not parts.hostname:
        raise WebhookUrlInvalidError("The URL needs a host name.", field="url")
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise WebhookUrlInvalidError("The host name is not valid.", field="url") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return ParsedUrl(scheme=scheme, host=host, port=port or DEFAULT_PORTS[scheme], path=path)


def address_refusal(address: IPAddress) -> str | None:
    """Why the platform never calls `address` (a few words), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 form of an IPv4 address reaches that IPv4 address: judge that one.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_unspecified or address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return None


def host_resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address `host` resolves to, in the resolver's order, without repeats.

    Raises:
        WebhookUrlInvalidError: the host does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WebhookUrlInvalidError(f"The host {host} does not resolve.", field="url") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # An IPv6 link-local answer may carry a zone (`fe80::1%eth0`).
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise WebhookUrlInvalidError(f"The host {host} does not resolve.", field="url")
    return tuple(found)


def target_resolve(url: str) -> Target:
    """Parse `url`, resolve its host and check every address it resolves to.

    Raises:
        WebhookUrlInvalidError: a malformed URL, or a host that does not resolve.
        WebhookUrlNotAllowedError: the host is, or resolves to, a non-public address.
    """
    parsed = url_parse(url)
    addresses = host_resolve(parsed.host, parsed.port)
    if not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            reason = address_refusal(address)
            if reason is not None:
                raise WebhookUrlNotAllowedError(
                    f"{parsed.host} resolves to {address}, {reason}; webhooks go to public "
                    "addresses only.",
                    field="url",
                )
    return Target(
        scheme=parsed.scheme,
        host=parsed.host,
        port=parsed.port,
        path=parsed.path,
        addresses=addresses,
    )
