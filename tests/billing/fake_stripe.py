"""A small local stand-in for the Stripe endpoints the platform calls, over real HTTP.

The real `stripe` library talks to it (STRIPE_API_BASE points here); objects live in memory
so a test can set a subscription's status the way Stripe would. Webhook bodies are signed
with Stripe's scheme: `Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body">`.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_fake_0123456789"
WEBHOOK_SECRET = "whsec_fake_0123456789"
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}{int(time.time() * 1000) % 100000}"


def nested(params: dict[str, str], name: str) -> dict[str, str]:
    """`metadata[tenant_id]=x` as posted by the library → {"tenant_id": "x"}."""
    found = {}
    for key, value in params.items():
        match = re.fullmatch(rf"{re.escape(name)}\[([^\]]+)\]", key)
        if match:
            found[match.group(1)] = value
    return found


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    authorization: str


@dataclass
class FakeStripe:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkout_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    portal_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # (method, path) -> (status, message) to answer the next matching call with, once
    failures: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    # Idempotency-Key -> (path, params, answer), like Stripe keeps them for 24 hours
    idempotent: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=dict)
    # Where checkout session URLs point ("" = this server); a browser test sets Stripe's own
    # host, which the billing page's CSP allows, and routes it back here.
    checkout_base: str = ""
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                page = fake.checkout_page(parts.path)
                if page is not None:
                    self._answer_html(page)
                    return
                self._answer(*fake.handle("GET", parts.path, dict(parse_qsl(parts.query)), self))

            def _answer_html(self, page: str) -> None:
                data = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                params = dict(parse_qsl(body, keep_blank_values=True))
                self._answer(*fake.handle("POST", urlsplit(self.path).path, params, self))

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", new_id("req"))
                if status >= 400:  # the library would otherwise retry a 5xx on its own
                    self.send_header("Stripe-Should-Retry", "false")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            for store in (self.customers, self.checkout_sessions, self.portal_sessions):
                store.clear()
            self.subscriptions.clear()
            self.calls.clear()
            self.failures.clear()
            self.idempotent.clear()
            self.checkout_base = ""

    def fail_next(self, method: str, path: str, *, status: int = 500, message: str = "") -> None:
        """Answer the next `method path` call with an error (500: Stripe down; 400: refused)."""
        with self.lock:
            self.failures[(method, path)] = (status, message or f"{path} failed")

    def checkout_page(self, path: str) -> str | None:
        """The page a checkout session's `url` opens: a "Pay" link back to its success URL.

        Paying here changes nothing in the fake; the test completes the session and delivers
        the events itself (`checkout_complete`, `event`, `signature`).
        """
        match = re.fullmatch(r"/pay/([^/]+)", path)
        with self.lock:
            session = self.checkout_sessions.get(match.group(1)) if match else None
        if session is None:
            return None
        success_url = html.escape(session["params"].get("success_url", ""))
        return (
            "<!doctype html><title>Fake Stripe Checkout</title><h1>Fake Stripe Checkout</h1>"
            f'<p><a id="pay" href="{success_url}">Pay</a></p>'
        )

    # The endpoints ---------------------------------------------------------------------

    def handle(
        self, method: str, path: str, params: dict[str, str], request: BaseHTTPRequestHandler
    ) -> tuple[int, dict[str, Any]]:
        authorization = request.headers.get("Authorization", "")
        with self.lock:
            self.calls.append(Call(method, path, params, authorization))
        if authorization != f"Bearer {API_KEY}":
            return 401, {"error": {"type": "invalid_request_error", "message": "bad key"}}
        route = (method, path)
        with self.lock:
            failure = self.failures.pop(route, None)
        if failure is not None:
            kind = "api_error" if failure[0] >= 500 else "invalid_request_error"
            return failure[0], {"error": {"type": kind, "message": failure[1]}}
        key = request.headers.get("Idempotency-Key") if method == "POST" else None
        if key and key in self.idempotent:
            first_path, first_params, answer = self.idempotent[key]
            if (first_path, first_params) != (path, params):
                return 400, {
                    "error": {
                        "type": "idempotency_error",
                        "message": (
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with."
                        ),
                    }
                }
            return 200, answer
        status, answer = self._route(method, path, params)
        if key and status == 200:
            self.idempotent[key] = (path, params, answer)
        return status, answer

    def _route(self, method: str, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        route = (method, path)
        if route == ("POST", "/v1/customers"):
            customer: dict[str, Any] = {
                "id": new_id("cus"),
                "object": "customer",
                "email": params.get("email"),
                "name": params.get("name"),
                "metadata": nested(params, "metadata"),
            }
            self.customers[customer["id"]] = customer
            return 200, customer
        if route == ("POST", "/v1/checkout/sessions"):
            session_id = new_id("cs_test")
            session: dict[str, Any] = {
                "id": session_id,
                "object": "checkout.session",
                "mode": params.get("mode"),
                "customer": params.get("customer"),
                "status": "open",
                "subscription": None,
                "client_reference_id": params.get("client_reference_id"),
                "metadata": nested(params, "metadata"),
                "url": f"{self.checkout_base or self.url}/pay/{session_id}",
                "params": params,
            }
            self.checkout_sessions[session_id] = session
            return 200, session
        if route == ("POST", "/v1/billing_portal/sessions"):
            portal: dict[str, Any] = {
                "id": new_id("bps"),
                "object": "billing_portal.session",
                "customer": params.get("customer"),
                "return_url": params.get("return_url"),
            }
            portal["url"] = f"{self.url}/portal/{portal['id']}"
            self.portal_sessions[portal["id"]] = portal
            return 200, portal
        if route == ("GET", "/v1/subscriptions"):
            found = [
                sub
                for sub in self.subscriptions.values()
                if sub["customer"] == params.get("customer")
            ]
            return 200, {"object": "list", "data": found, "has_more": False, "url": path}
        match = re.fullmatch(r"/v1/subscriptions/([^/]+)", path)
        if method == "GET" and match and match.group(1) in self.subscriptions:
            return 200, self.subscriptions[match.group(1)]
        return 404, {"error": {"type": "invalid_request_error", "message": f"no {path}"}}

    # What Stripe does on its side ------------------------------------------------------

    def subscription_put(
        self,
        *,
        customer: str,
        status: str,
        price: str,
        tenant_id: str = "",
        subscription_id: str | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """Create or change a subscription as Stripe would hold it now."""
        subscription_id = subscription_id or new_id("sub")
        now = int(time.time())
        previous = self.subscriptions.get(subscription_id, {})
        subscription = {
            "id": subscription_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "created": created or previous.get("created") or now,
            "cancel_at_period_end": False,
            "metadata": {"tenant_id": tenant_id} if tenant_id else {},
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": f"si_{subscription_id}",
                        "object": "subscription_item",
                        "price": {"id": price, "object": "price"},
                        "current_period_end": now + 30 * 86400,
                    }
                ],
            },
        }
        with self.lock:
            self.subscriptions[subscription_id] = subscription
        return json.loads(json.dumps(subscription))

    def checkout_complete(self, session_id: str, *, status: str = "active") -> dict[str, Any]:
        """The customer paid: a subscription exists; return the completed session object."""
        session = self.checkout_sessions[session_id]
        params = session["params"]
        subscription = self.subscription_put(
            customer=session["customer"],
            status=status,
            price=params["line_items[0][price]"],
            tenant_id=params.get("subscription_data[metadata][tenant_id]", ""),
        )
        completed = {key: value for key, value in session.items() if key != "params"}
        completed.update(status="complete", subscription=subscription["id"])
        return completed

    def api_calls(self) -> list[Call]:
        with self.lock:
            return list(self.calls)


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A Stripe event envelope around a snapshot of `obj`."""
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "type": kind,
        "api_version": "2025-06-30.basil",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
    }


def signature(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """Stripe's signing scheme for webhook deliveries."""
    timestamp = timestamp or int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
