"""One webhook POST: to an address checked by `targets`, with short timeouts, no redirects.

The host is resolved and checked once (`target_resolve`); the request then goes to the
checked address itself, with the host name kept for the `Host` header, TLS's SNI and
certificate check. So the certificate must still match the host name, and no second DNS
answer is ever asked for. Proxies from the environment are ignored (they would resolve
the host again, elsewhere), redirects are never followed (a 3xx is a failure, as the
Standard Webhooks specification recommends), and the response body is not read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from core.errors import AppError
from core.tracing import outbound_untraced
from tenant_apps.webhooks.targets import Target, target_resolve

logger = logging.getLogger(__name__)

USER_AGENT = "TenantPlatform-Webhooks/1.0"
ERROR_MAX_CHARS = 200


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: a status code, or why there was none."""

    status_code: int | None = None
    error: str = ""
    retry_after_seconds: int | None = None

    @property
    def is_success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the URL's (checked) IP address while TLS speaks to `host_name`."""

    def __init__(self, host_name: str) -> None:
        self.host_name = host_name
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.host_name  # SNI
            pool_kwargs["assert_hostname"] = self.host_name  # the certificate's name
        return host_params, pool_kwargs


def _pinned_url(target: Target) -> str:
    address = target.addresses[0]
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{target.scheme}://{host}:{target.port}{target.path}"


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


def webhook_post(url: str, *, body: str, headers: dict[str, str]) -> Outcome:
    """POST `body` to `url` once; never raises for what the receiver or network does."""
    try:
        target = target_resolve(url)
    except AppError as error:  # refused or unresolvable now, whatever it was when saved
        return Outcome(error=error.detail[:ERROR_MAX_CHARS])
    session = requests.Session()
    session.trust_env = False  # no proxy, .netrc or CA bundle from the environment
    adapter = PinnedAddressAdapter(target.host)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    sent_headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    try:
        with outbound_untraced():
            response = session.post(
                _pinned_url(target),
                data=body.encode(),
                headers=sent_headers,
                timeout=(settings.WEBHOOKS_CONNECT_TIMEOUT, settings.WEBHOOKS_READ_TIMEOUT),
                allow_redirects=False,
                stream=True,  # the status line and headers are all we read
                verify=settings.WEBHOOKS_CA_BUNDLE or True,
            )
        response.close()
    except requests.Timeout:
        return Outcome(error="The receiver did not answer in time.")
    except requests.exceptions.SSLError:
        return Outcome(error="The TLS handshake failed (certificate or protocol).")
    except requests.ConnectionError:
        return Outcome(error="Could not connect to the receiver.")
    except requests.RequestException as error:
        logger.info("webhook request failed", extra={"error": type(error).__name__})
        return Outcome(error=f"The request failed ({type(error).__name__}).")
    if 200 <= response.status_code < 300:
        return Outcome(status_code=response.status_code)
    return Outcome(
        status_code=response.status_code,
        error=f"The receiver answered {response.status_code}.",
        retry_after_seconds=_retry_after(response),
    )
