"""HTTPS to a pinned address: the connection goes to the checked IP, while TLS still checks
the certificate against the URL's host name."""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tenant_apps.webhooks.transport import webhook_post

HOST = "hooks.tls.test"


def _certificate(
    name: str, key: Any, issuer_name: str, issuer_key: Any, *, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def tls_receiver(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[int, str, list[str]]]:
    """An HTTPS receiver on 127.0.0.1 whose certificate names `request.param`; yields its
    port, the CA bundle that trusts it, and the Host headers it saw."""
    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _certificate("Test CA", ca_key, "Test CA", ca_key, ca=True)
    server = _certificate(request.param, server_key, "Test CA", ca_key, ca=False)
    bundle = _pem(tmp_path, "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        _pem(tmp_path, "server.pem", server.public_bytes(serialization.Encoding.PEM)),
        _pem(
            tmp_path,
            "server.key",
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
    )
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1]), bundle, hosts
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """`hooks.tls.test` resolves to loopback (no DNS server in tests)."""
    real = socket.getaddrinfo

    def answer(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", answer)


@pytest.mark.usefixtures("resolver")
@pytest.mark.parametrize("tls_receiver", [HOST], indirect=True)
def test_https_to_the_checked_address_verifies_the_host_names_certificate(
    tls_receiver: tuple[int, str, list[str]], settings: Any
) -> None:
    port, bundle, hosts = tls_receiver
    settings.WEBHOOKS_CA_BUNDLE = bundle
    outcome = webhook_post(f"https://{HOST}:{port}/in", body="{}", headers={})
    assert (outcome.status_code, outcome.error) == (204, "")
    assert hosts == [f"{HOST}:{port}"]


@pytest.mark.usefixtures("resolver")
@pytest.mark.parametrize("tls_receiver", ["someone-else.test"], indirect=True)
def test_a_certificate_for_another_name_fails_the_attempt(
    tls_receiver: tuple[int, str, list[str]], settings: Any
) -> None:
    port, bundle, hosts = tls_receiver
    settings.WEBHOOKS_CA_BUNDLE = bundle
    outcome = webhook_post(f"https://{HOST}:{port}/in", body="{}", headers={})
    assert (outcome.status_code, outcome.error) == (
        None,
        "The TLS handshake failed (certificate or protocol).",
    )
    assert hosts == []
