"""The collector run for real (`python -m serving.collector` under uvicorn): files land in a local
path and in an S3 server, and neither SIGTERM nor kill -9 mid-stream loses an acknowledged event."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from tests.runtime.collector_support import (
    REQUEST,
    RESPONSE,
    CollectorProcess,
    binary_headers,
    read_local_store,
    read_s3_store,
    structured_body,
    v1_pair,
)
from tests.runtime.servers import MotoServer

pytestmark = pytest.mark.server
BUCKET = "payloads"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer.start(tmp_path_factory.mktemp("moto")) as server:
        server.s3_client().create_bucket(Bucket=BUCKET)
        yield server


def settings(store_uri: str, spool: Path, **extra: str) -> dict[str, str]:
    return {
        "COLLECTOR_STORE_URI": store_uri,
        "COLLECTOR_SPOOL_DIR": str(spool),
        "COLLECTOR_MODELS": json.dumps([{"inferenceService": "iris", "version": "1", "inputNames": ["a", "b", "c", "d"]}]),
        **extra,
    }


def post_v1(client: httpx.Client, event_id: str, event_type: str, body: object, version: str | None = None) -> httpx.Response:
    return client.post("/", content=json.dumps(body).encode(), headers=binary_headers(event_id, event_type, version=version))


@pytest.mark.parametrize("store_kind", ["local", "s3"])
def test_posted_events_land_as_parquet_rows_in_the_store(store_kind: str, moto: MotoServer, tmp_path: Path) -> None:
    """20 V1 binary-mode pairs (model version 1 from config) and 5 structured V2 pairs (version 2 from
    the annotation) become 25 rows with named features, written on size while running."""
    store_uri = str(tmp_path / "store") if store_kind == "local" else f"s3://{BUCKET}/{tmp_path.name}"
    extra = {"COLLECTOR_S3_ENDPOINT_URL": moto.url, "COLLECTOR_MAX_BATCH_RECORDS": "10", "COLLECTOR_MAX_BATCH_AGE_SECONDS": "2"}
    collector = CollectorProcess.start(settings(store_uri, tmp_path / "spool", **extra), tmp_path / "collector.log")
    try:
        with httpx.Client(base_url=collector.url, timeout=10) as client:
            for n in range(20):
                request, response = v1_pair(n)
                assert post_v1(client, f"v1-{n}", REQUEST, request).status_code == 200
                assert post_v1(client, f"v1-{n}", RESPONSE, response).status_code == 200
            for n in range(5):
                tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [n, n, n, n]}
                output = {"name": "predict", "shape": [1], "datatype": "INT64", "data": [n % 2]}
                for event_type, data in ((REQUEST, {"inputs": [tensor]}), (RESPONSE, {"outputs": [output]})):
                    body = structured_body(f"v2-{n}", event_type, data, version="2")
                    assert client.post("/", content=body, headers={"content-type": "application/cloudevents+json"}).status_code == 200
            table = _wait_for_rows(store_kind, store_uri, moto, expected=25)
            metrics = client.get("/metrics").text
        assert 'mlops_collector_records_written_total{model="iris",version="1"} 20.0' in metrics
        assert 'mlops_collector_events_received_total{event_type="response",model="iris",version="2"} 5.0' in metrics
    finally:
        assert collector.terminate(), collector.log()
    rows = {row["request_id"]: row for row in table.to_pylist()}
    assert sorted(rows) == sorted([f"v1-{n}" for n in range(20)] + [f"v2-{n}" for n in range(5)])
    assert len({row["inference_id"] for row in rows.values()}) == 25
    assert {k: v for k, v in rows["v1-7"].items() if k not in ("timestamp", "inference_id")} == {
        "request_id": "v1-7", "model": "iris", "version": "1",
        "input.a": 7.0, "input.b": 3.5, "input.c": 1.5, "input.d": 0.25, "output.prediction": 1.0,
    }
    assert (rows["v2-3"]["version"], rows["v2-3"]["input.a"], rows["v2-3"]["output.prediction"]) == ("2", 3.0, 1.0)


def _wait_for_rows(store_kind: str, store_uri: str, moto: MotoServer, expected: int, timeout: float = 15) -> pa.Table:
    deadline = time.monotonic() + timeout
    while True:
        keys, table = _read_store(store_kind, store_uri, moto)
        if table is not None and table.num_rows >= expected or time.monotonic() > deadline:
            assert table is not None and table.num_rows == expected
            assert all(LAYOUT.match(key) for key in keys), keys
            return table
        time.sleep(0.1)


LAYOUT = re.compile(r"^iris/[12]/date=2026-03-04/hour=05/[0-9a-f-]{36}\.parquet$")


def _read_store(store_kind: str, store_uri: str, moto: MotoServer) -> tuple[list[str], pa.Table | None]:
    """Parquet object keys relative to the store root, and their rows."""
    if store_kind == "local":
        root = Path(store_uri)
        keys = [str(p.relative_to(root)) for p in root.rglob("*.parquet")]
        return keys, read_local_store(root)
    client = moto.s3_client()
    prefix = store_uri.split("/", 3)[3]
    keys, table = read_s3_store(client, BUCKET, f"{prefix}/iris/")
    return [key.removeprefix(f"{prefix}/") for key in keys], table


@dataclass
class Stream:
    """Threads posting request/response pairs until the collector stops answering."""

    url: str
    threads: int = 4
    acknowledged: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> "Stream":
        self._workers = [threading.Thread(target=self._send, args=(w,), daemon=True) for w in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def wait_for(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count:
            assert time.monotonic() < deadline, f"only {len(self.acknowledged)} events acknowledged"
            time.sleep(0.01)

    def finish(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _send(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            n = 0
            while not self._stop.is_set():
                event_id = f"w{worker}-{n}"
                for event_type, body in zip((REQUEST, RESPONSE), v1_pair(n)):
                    try:
                        status = post_v1(client, event_id, event_type, body).status_code
                    except httpx.TransportError:
                        return
                    if status != 200:
                        return
                    with self._lock:
                        self.acknowledged.append((event_id, event_type))
                n += 1


def assert_every_acknowledged_event_is_stored(acknowledged: list[tuple[str, str]], table: pa.Table | None) -> None:
    assert table is not None
    rows = table.to_pylist()
    inputs = {r["request_id"] for r in rows if r.get("input.a") is not None}
    outputs = {r["request_id"] for r in rows if r.get("output.prediction") is not None}
    lost = [(i, t) for i, t in acknowledged if i not in (inputs if t == REQUEST else outputs)]
    assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged events are not in the store: {lost[:5]}"


def test_sigterm_mid_stream_writes_every_acknowledged_event(tmp_path: Path) -> None:
    """With batches far from full, SIGTERM during a stream of posts still puts every event that got a
    200 into the store, exactly once, and leaves an empty spool."""
    spool = tmp_path / "spool"
    big = {"COLLECTOR_MAX_BATCH_RECORDS": "100000", "COLLECTOR_MAX_BATCH_AGE_SECONDS": "3600"}
    collector = CollectorProcess.start(settings(str(tmp_path / "store"), spool, **big), tmp_path / "collector.log")
    stream = Stream(collector.url).start()
    stream.wait_for(300)
    assert collector.terminate(), collector.log()
    stream.finish()
    table = read_local_store(tmp_path / "store")
    assert_every_acknowledged_event_is_stored(stream.acknowledged, table)
    assert table is not None and len(set(table.column("request_id").to_pylist())) == table.num_rows
    assert list(spool.glob("segment-*.wal")) == []


def test_kill_9_mid_stream_then_restart_replays_the_spool(tmp_path: Path) -> None:
    """kill -9 during a stream writes nothing, yet after a restart the spool replay puts every
    acknowledged event into the store."""
    spool = tmp_path / "spool"
    big = {"COLLECTOR_MAX_BATCH_RECORDS": "100000", "COLLECTOR_MAX_BATCH_AGE_SECONDS": "3600"}
    first = CollectorProcess.start(settings(str(tmp_path / "store"), spool, **big), tmp_path / "first.log")
    stream = Stream(first.url).start()
    stream.wait_for(300)
    first.kill()
    stream.finish()
    assert read_local_store(tmp_path / "store") is None
    assert list(spool.glob("segment-*.wal")) != []

    second = CollectorProcess.start(settings(str(tmp_path / "store"), spool, **big), tmp_path / "second.log")
    assert second.terminate(), second.log()
    assert "replaying" in second.log()
    assert_every_acknowledged_event_is_stored(stream.acknowledged, read_local_store(tmp_path / "store"))
    assert list(spool.glob("segment-*.wal")) == []


def test_kill_9_under_steady_load_replays_only_the_unflushed_tail(tmp_path: Path) -> None:
    """Batches of 40 rows are written while 4 clients post; kill -9 leaves the active segment
    holding every event so far, most of them stored. The restart resends only what its flushed
    marker does not list as stored: at most one batch (stored, marker not yet rewritten) comes
    twice, where replaying the segment would repeat every row stored before the kill. Rows repeat
    with the same inference_id, and every acknowledged event is stored."""
    spool, store = tmp_path / "spool", tmp_path / "store"
    batches = {"COLLECTOR_MAX_BATCH_RECORDS": "40", "COLLECTOR_MAX_BATCH_AGE_SECONDS": "3600"}
    first = CollectorProcess.start(settings(str(store), spool, **batches), tmp_path / "first.log")
    stream = Stream(first.url).start()
    stream.wait_for(1200)
    first.kill()
    stream.finish()
    stored_before = read_local_store(store)
    assert stored_before is not None and stored_before.num_rows >= 400, "the test needs many rows stored before the kill"
    [segment] = spool.glob("segment-*.wal")
    assert int(segment.with_suffix(".flushed").read_text().split()[0]) > 0

    second = CollectorProcess.start(settings(str(store), spool, **batches), tmp_path / "second.log")
    assert second.terminate(), second.log()
    table = read_local_store(store)
    assert_every_acknowledged_event_is_stored(stream.acknowledged, table)
    assert table is not None
    keys = list(zip(table.column("inference_id").to_pylist(), table.column("request_id").to_pylist()))
    repeated = len(keys) - len(set(keys))
    # The same row twice has the same inference id: deduplicating on it and on request_id agree.
    assert repeated == table.num_rows - len(set(table.column("request_id").to_pylist()))
    print(f"kill -9 after {stored_before.num_rows} stored rows: {repeated} written twice after the restart")
    assert repeated <= 40
    assert list(spool.glob("segment-*")) == []


def test_deeply_nested_body_gets_400_from_the_running_collector(tmp_path: Path) -> None:
    """100 000 levels of "[" (past Python's JSON parser) and 100 levels (past the collector's limit)
    are refused as malformed, counted, and the collector keeps serving."""
    collector = CollectorProcess.start(settings(str(tmp_path / "store"), tmp_path / "spool"), tmp_path / "collector.log")
    try:
        with httpx.Client(base_url=collector.url, timeout=10) as client:
            for depth in (100_000, 100):
                body = {"instances": [json.loads("[" * 100 + "]" * 100)]} if depth == 100 else None
                content = json.dumps(body).encode() if body else b'{"instances": [' + b"[" * depth + b"]" * depth + b"]}"
                response = client.post("/", content=content, headers=binary_headers(f"deep-{depth}", REQUEST))
                assert response.status_code == 400, response.text
                assert response.json()["reason"] == "malformed" and "nests deeper than 64 levels" in response.json()["error"]
            request, _ = v1_pair(1)
            assert post_v1(client, "after", REQUEST, request).status_code == 200
            assert 'mlops_collector_events_dropped_total{reason="malformed"} 2.0' in client.get("/metrics").text
    finally:
        assert collector.terminate(), collector.log()
    assert "Traceback" not in collector.log()
