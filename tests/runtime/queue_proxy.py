"""A stand-in for the Knative queue-proxy's request metrics, in front of a real model server.

The queue-proxy is a Go binary in an image and cannot run here. This proxy forwards every request to
the model server and records, per request, what the pinned queue-proxy records: one observation of
`kn.serving.invocation.duration` in seconds with the attribute `http.response.status_code`, into the
explicit buckets `latencyBounds` (knative/serving pkg/queue/request_metric.go @ knative-v1.21.3,
`NewAppRequestMetricsHandler` and `ServeHTTP`). /metrics renders them as the OpenTelemetry Prometheus
exporter v0.61.0 does with UnderscoreEscapingWithSuffixes (knative/pkg
observability/metrics/prometheus_enabled.go; opentelemetry-go exporters/prometheus/testdata/
histogram.txt @ exporters/prometheus/v0.61.0): dots to underscores, the unit suffix `_seconds`, the
status code as label `http_response_status_code`, and the scope labels on every series. Names,
bounds and labels come from monitoring.catalog, which cites the same files.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import httpx

from monitoring import catalog

FAMILY = catalog.QUEUE_PROXY_REQUEST_DURATION
BOUNDS = catalog.QUEUE_PROXY_LATENCY_BOUNDS
SCOPE = {"otel_scope_name": catalog.QUEUE_PROXY_SCOPE, "otel_scope_schema_url": "", "otel_scope_version": ""}


class _Histogram:
    """Cumulative bucket counts, sum and count per status code."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[int, list[int]] = defaultdict(lambda: [0] * len(BOUNDS))
        self._sums: dict[int, float] = defaultdict(float)
        self._counts: dict[int, int] = defaultdict(int)

    def observe(self, status: int, seconds: float) -> None:
        with self._lock:
            # OTel explicit buckets are upper-inclusive, as Prometheus' `le`.
            first = bisect.bisect_left(BOUNDS, seconds)
            for index in range(first, len(BOUNDS)):
                self._buckets[status][index] += 1
            self._sums[status] += seconds
            self._counts[status] += 1

    def exposition(self) -> str:
        lines = [
            f"# HELP {FAMILY.name} The duration of task execution",
            f"# TYPE {FAMILY.name} histogram",
        ]
        with self._lock:
            for status in sorted(self._counts):
                labels = {"http_response_status_code": str(status), **SCOPE}
                for bound, count in zip(BOUNDS, self._buckets[status]):
                    lines.append(f"{FAMILY.name}_bucket{_labels({**labels, 'le': f'{bound:g}'})} {count}")
                lines.append(f"{FAMILY.name}_bucket{_labels({**labels, 'le': '+Inf'})} {self._counts[status]}")
                lines.append(f"{FAMILY.name}_sum{_labels(labels)} {self._sums[status]!r}")
                lines.append(f"{FAMILY.name}_count{_labels(labels)} {self._counts[status]}")
        return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{key}="{value}"' for key, value in sorted(labels.items())) + "}"


class QueueProxyStandIn:
    """Forwards to `upstream` (http://host:port) on its own port; GET /metrics answers the exposition."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.histogram = _Histogram()
        # A connection per request: the model servers close idle keep-alive connections on their own terms.
        self._client = httpx.Client(timeout=30.0, limits=httpx.Limits(max_keepalive_connections=0))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._answer(200, proxy.histogram.exposition().encode(), "text/plain; version=0.0.4")
                else:
                    self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                started = time.monotonic()
                response = proxy._client.request(
                    self.command, proxy.upstream + self.path, content=body, headers={"content-type": self.headers.get("content-type", "application/json")}
                )
                proxy.histogram.observe(response.status_code, time.monotonic() - started)
                self._answer(response.status_code, response.content, response.headers.get("content-type", "application/json"))

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def __enter__(self) -> "QueueProxyStandIn":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()
