"""A local retraining webhook receiver that verifies the signature the way a receiver in any
language would: HMAC-SHA256 of the raw body under the shared secret (Python's `hmac`, not the
drift job's code), compared in constant time with the `X-Mlops-Signature-256` header.

A verified call is answered 202 and recorded; any other is answered 401 and counted as refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedCall:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class SignedReceiver:
    secret: str
    accepted: list[ReceivedCall] = field(default_factory=list)
    refused: list[ReceivedCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                call = ReceivedCall(dict(self.headers.items()), self.rfile.read(int(self.headers["Content-Length"])))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), call.body, hashlib.sha256).hexdigest()
                verified = hmac.compare_digest(expected, self.headers.get("X-Mlops-Signature-256", ""))
                (receiver.accepted if verified else receiver.refused).append(call)
                self.send_response(202 if verified else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/retrain"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
