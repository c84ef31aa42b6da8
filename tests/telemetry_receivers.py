"""Small local HTTP servers for telemetry tests: a Sentry envelope sink and an OTLP/HTTP
trace receiver. The SDKs in the test process and in the worker send to them over real
sockets; tests read what arrived."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    encoding = (handler.headers.get("Content-Encoding") or "").lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding == "br":  # pragma: no cover - only when brotli is installed
        import brotli

        return bytes(brotli.decompress(raw))
    return raw


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> _Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


# SENTRY -----------------------------------------------------------------------------------


def envelope_items(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """Split a Sentry envelope into (item header, payload) pairs."""
    lines = body.split(b"\n", 1)
    rest = lines[1] if len(lines) > 1 else b""
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :]
            rest = rest[1:] if rest.startswith(b"\n") else rest
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return items


class _SentryHandler(BaseHTTPRequestHandler):
    server: SentrySink

    def do_POST(self) -> None:
        body = _body(self)
        if self.path.rstrip("/").endswith("/envelope"):
            with self.server.lock:
                self.server.envelopes.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SentrySink(_Server):
    """Accepts what Sentry's SDK posts to /api/<project>/envelope/ and keeps it."""

    def __init__(self) -> None:
        super().__init__(_SentryHandler)
        self.envelopes: list[bytes] = []

    @property
    def dsn(self) -> str:
        return f"http://key@127.0.0.1:{self.port}/1"

    def events(self) -> list[dict[str, Any]]:
        """Every error event received so far."""
        with self.lock:
            envelopes = list(self.envelopes)
        return [
            json.loads(payload)
            for body in envelopes
            for header, payload in envelope_items(body)
            if header.get("type") == "event"
        ]

    def envelopes_with(self, text: str) -> list[bytes]:
        """The raw envelopes (decompressed) that contain `text`."""
        with self.lock:
            return [body for body in self.envelopes if text.encode() in body]


# OTLP -------------------------------------------------------------------------------------


@dataclass
class ReceivedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class _OtlpHandler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(_body(self))
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            kind=Span.SpanKind.Name(span.kind),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self.server.lock:
            self.server.spans.extend(spans)
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class OtlpReceiver(_Server):
    """Accepts OTLP/HTTP protobuf exports on POST /v1/traces and keeps the spans."""

    def __init__(self) -> None:
        super().__init__(_OtlpHandler)
        self.spans: list[ReceivedSpan] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)
