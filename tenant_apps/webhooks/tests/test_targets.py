"""Where webhooks may go: every address a host resolves to is checked, with the setting off."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from tenant_apps.webhooks import targets
from tenant_apps.webhooks.errors import WebhookUrlInvalidError, WebhookUrlNotAllowedError
from tenant_apps.webhooks.targets import address_refusal, target_resolve, url_parse


@pytest.fixture
def production_rules(settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    settings.WEBHOOKS_ALLOW_PLAIN_HTTP = False


@pytest.mark.usefixtures("production_rules")
@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "[::1]",
        "169.254.169.254",  # the cloud metadata service
        "localhost",  # a name that resolves to loopback
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "[::ffff:169.254.169.254]",
        "[::ffff:10.0.0.1]",
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "[fc00::1]",  # unique local
        "[fe80::1]",  # link-local
        "224.0.0.1",  # multicast
        "[ff02::1]",
        "240.0.0.1",  # reserved
        "0.0.0.0",
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "2130706433",  # 127.0.0.1 written as one number
        "0x7f.1",  # and in hex
    ],
)
def test_non_public_addresses_are_refused(host: str) -> None:
    with pytest.raises(WebhookUrlNotAllowedError) as refused:
        target_resolve(f"https://{host}/hooks")
    assert refused.value.code == "webhook_url_not_allowed"
    assert refused.value.field == "url"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),
        ("10.0.0.1", "a private address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("224.0.0.1", "a multicast address"),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
        ("64:ff9b::5db8:d822", None),  # NAT64 of a public address
    ],
)
def test_address_refusal_names_the_reason(address: str, reason: str | None) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.usefixtures("production_rules")
def test_a_public_address_is_allowed_and_kept_for_the_connection() -> None:
    target = target_resolve("https://93.184.216.34:8443/hooks?team=7")
    assert target.addresses == (ipaddress.ip_address("93.184.216.34"),)
    assert (target.host, target.port, target.path) == ("93.184.216.34", 8443, "/hooks?team=7")
    assert target.host_header == "93.184.216.34:8443"


@pytest.mark.usefixtures("production_rules")
def test_one_private_answer_among_public_ones_is_enough_to_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A resolver (faked: no DNS server in tests) answering a public and a loopback address.
    def answers(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "hooks.example.com"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(targets.socket, "getaddrinfo", answers)
    with pytest.raises(WebhookUrlNotAllowedError, match=r"127\.0\.0\.1"):
        target_resolve("https://hooks.example.com/in")


@pytest.mark.usefixtures("production_rules")
@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://93.184.216.34/hooks",  # plain http in production
        "ftp://93.184.216.34/hooks",
        "hooks.example.com/in",  # no scheme
        "https:///in",  # no host
        "https://user:secret@93.184.216.34/in",
        "https://93.184.216.34/in#part",
        "https://93.184.216.34/in put",
        "https://93.184.216.34/in\r\nX-Injected: 1",
        "https://93.184.216.34:99999/in",
        "https://" + "a" * 2000 + ".com/",
        "https://nothing-resolves-here.invalid/in",
    ],
)
def test_malformed_urls_are_refused_with_a_clear_code(url: str) -> None:
    with pytest.raises(WebhookUrlInvalidError) as refused:
        target_resolve(url)
    assert refused.value.code == "webhook_url_invalid"


def test_plain_http_and_loopback_are_allowed_where_the_settings_say(settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOKS_ALLOW_PLAIN_HTTP = True
    target = target_resolve("http://127.0.0.1:8080/in")
    assert target.addresses == (ipaddress.ip_address("127.0.0.1"),)


def test_an_international_host_name_is_sent_in_its_ascii_form(settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PLAIN_HTTP = False
    assert url_parse("https://bücher.example/in").host == "xn--bcher-kva.example"


def test_the_production_settings_refuse_private_targets() -> None:
    from config.settings import base

    assert base.WEBHOOKS_ALLOW_PRIVATE_TARGETS is False
    assert base.WEBHOOKS_ALLOW_PLAIN_HTTP is False
