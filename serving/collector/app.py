"""The collector's HTTP face: the CloudEvents sink, Prometheus metrics and the probes.

- `POST /`: one CloudEvent (binary or structured mode). 200 once the event is spooled; 4xx for an
  event that can never be accepted (it is counted in `mlops_collector_events_dropped_total`);
  503 while the collector is overloaded or its spool cannot be written. 200 rather than 202:
  KServe's logger treats any status other than 200 as an error in its own log. It never retries
  (a refused event is lost to it), which is why the collector refuses only what it must.
- `GET /metrics`: Prometheus text format.
- `GET /ready`: 200 once the spool is replayed and a probe write reached the store, 503 before
  that and while overloaded. A store outage after start-up does not make the collector unready:
  it keeps spooling events (nothing is lost while the spool volume has room) instead of making
  the Service refuse them.
- `GET /healthz`: 200 whenever the event loop answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from serving.collector.config import CollectorConfig
from serving.collector.events import EventRejected, parse_http_event, utc_now
from serving.collector.metrics import CollectorMetrics
from serving.collector.service import Collector
from serving.collector.spool import Spool
from serving.collector.store import ObjectStore, open_store

LOG = logging.getLogger(__name__)
TICK_SECONDS = 1.0


def create_app(config: CollectorConfig, store: ObjectStore | None = None) -> Starlette:
    metrics = CollectorMetrics.create()
    collector = Collector(
        config,
        store if store is not None else open_store(config.store_uri, config.s3_endpoint_url),
        Spool(config.spool_dir),
        metrics,
    )

    async def receive_event(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, config.max_event_bytes)
            event = parse_http_event(request.headers, body, config, utc_now)
            stored = await collector.accept(event)
        except EventRejected as rejected:
            metrics.events_dropped.labels(rejected.reason).inc()
            LOG.warning("refused event %s: %s", request.headers.get("ce-id", "(no ce-id)"), rejected.message)
            return JSONResponse({"error": rejected.message, "reason": rejected.reason}, status_code=rejected.status)
        # 200 either way: KServe's logger treats anything else as an error, and a sampled-out event is handled.
        return JSONResponse({"accepted": event.event_id, "type": event.kind, "stored": stored})

    async def serve_metrics(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def readiness(_: Request) -> JSONResponse:
        state = {
            "spoolReplayed": collector.replayed,
            "storeVerified": collector.store_verified,
            "bufferedRecords": collector.buffered_rows,
            "maxBufferedRecords": config.max_buffered_records,
        }
        return JSONResponse({"ready": collector.ready, **state}, status_code=200 if collector.ready else 503)

    async def liveness(_: Request) -> JSONResponse:
        return JSONResponse({"alive": True})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await collector.start()
        stopping = asyncio.Event()
        ticker = asyncio.create_task(_tick_until(stopping, collector, min(TICK_SECONDS, config.max_batch_age_seconds / 2)))
        try:
            yield
        finally:
            # Let a running tick finish rather than cancel it: a write cancelled mid-flight would
            # leave its rows neither released from the spool nor in the drain.
            stopping.set()
            await ticker
            await collector.drain()

    return Starlette(
        routes=[
            Route("/", receive_event, methods=["POST"]),
            Route("/metrics", serve_metrics, methods=["GET"]),
            Route("/ready", readiness, methods=["GET"]),
            Route("/healthz", liveness, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise EventRejected(413, "oversized", f"event body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise EventRejected(413, "oversized", f"event body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _tick_until(stopping: asyncio.Event, collector: Collector, interval: float) -> None:
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
        if stopping.is_set():
            return
        try:
            await collector.tick()
        except Exception:
            # A bug in one tick must not stop age flushes for the life of the process.
            LOG.exception("collector tick failed; retrying at the next tick")
