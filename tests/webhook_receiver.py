"""A webhook receiver for tests: http.server on loopback, in a thread, recording each POST.

It checks signatures with the snippet docs/api.md gives receivers (read from the file, so
the documented code is the code under test).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def documented_verify() -> Any:
    """The `webhook_verify` function of docs/api.md, compiled from the document itself."""
    blocks = re.findall(r"```python\n(.*?)```", API_DOC.read_text(), flags=re.DOTALL)
    source = next(block for block in blocks if "def webhook_verify(" in block)
    namespace: dict[str, Any] = {}
    exec(compile(source, str(API_DOC), "exec"), namespace)  # our own document
    return namespace["webhook_verify"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class WebhookReceiver:
    """Answers every POST with `status` (or, with `hang`, not at all until it stops)."""

    status: int = 204
    hang: bool = False
    received: list[Received] = field(default_factory=list)

    def start(self) -> WebhookReceiver:
        receiver = self
        self._release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {key.lower(): value for key, value in self.headers.items()}
                receiver.received.append(Received(self.path, headers, body, time.monotonic()))
                if receiver.hang:
                    receiver._release.wait(30)
                    return
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
