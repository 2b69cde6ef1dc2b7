"""The collector's HTTP interface in-process (ASGI, lifespan included): status codes, metrics, probes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.collector.app import create_app
from serving.collector.config import CollectorConfig
from tests.runtime.collector_support import REQUEST, RESPONSE, binary_headers, read_local_store, structured_body, v1_pair

Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, store_uri: str | None = None, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    config = CollectorConfig(store_uri=store_uri or str(tmp_path / "store"), spool_dir=tmp_path / "spool", **settings)  # type: ignore[arg-type]
    app = create_app(config)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collector") as client:
            yield client


def run(tmp_path: Path, scenario: Scenario, **settings: object) -> None:
    async def main() -> None:
        async with serving(tmp_path, **settings) as client:
            await scenario(client)

    asyncio.run(main())


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def post(client: httpx.AsyncClient, event_id: str, event_type: str, body: object, **header_overrides: str) -> httpx.Response:
    headers = {**binary_headers(event_id, event_type, version="2"), **header_overrides}
    return await client.post("/", content=json.dumps(body).encode(), headers=headers)


def test_sink_acknowledges_with_200_and_counts_events_by_model_version_and_type(tmp_path: Path) -> None:
    """Both halves are accepted with 200 (KServe logs anything else as an error) and counted."""

    async def scenario(client: httpx.AsyncClient) -> None:
        request, response = v1_pair(1)
        assert (await post(client, "e1", REQUEST, request)).status_code == 200
        assert (await post(client, "e1", RESPONSE, response)).status_code == 200
        assert await metric(client, "mlops_collector_events_received_total", model="iris", version="2", event_type="request") == 1
        assert await metric(client, "mlops_collector_events_received_total", model="iris", version="2", event_type="response") == 1
        assert await metric(client, "mlops_collector_buffered_records") == 1

    run(tmp_path, scenario)


def test_structured_mode_events_are_accepted(tmp_path: Path) -> None:
    """application/cloudevents+json posts are read like binary ones."""

    async def scenario(client: httpx.AsyncClient) -> None:
        body = structured_body("s1", REQUEST, {"instances": [[1.0]]}, version="5")
        response = await client.post("/", content=body, headers={"content-type": "application/cloudevents+json"})
        assert response.status_code == 200
        assert await metric(client, "mlops_collector_events_received_total", model="iris", version="5", event_type="request") == 1

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("overrides", "body", "status", "reason"),
    [
        ({"ce-type": "dev.example.unknown"}, {"instances": [[1]]}, 400, "unknown_type"),
        ({"ce-id": ""}, {"instances": [[1]]}, 400, "missing_id"),
        ({}, {"not": "an inference"}, 400, "malformed"),
        ({}, {"instances": [[0.5] * 2000]}, 413, "oversized"),
    ],
)
def test_bad_events_get_4xx_and_a_drop_count_and_the_server_keeps_serving(
    tmp_path: Path, overrides: dict[str, str], body: object, status: int, reason: str
) -> None:
    """A refused event is counted by reason, not as received, and the next good event still goes through."""

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await post(client, "bad", REQUEST, body, **overrides)
        assert (response.status_code, response.json()["reason"]) == (status, reason)
        assert await metric(client, "mlops_collector_events_dropped_total", reason=reason) == 1
        assert await metric(client, "mlops_collector_events_received_total") == 0
        assert (await post(client, "good", REQUEST, {"instances": [[1]]})).status_code == 200

    run(tmp_path, scenario, max_event_bytes=4096)


def test_non_json_body_is_a_malformed_event(tmp_path: Path) -> None:
    """Garbage bytes get 400 `malformed`."""

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/", content=b"\x00garbage", headers=binary_headers("g", REQUEST))
        assert (response.status_code, response.json()["reason"]) == (400, "malformed")

    run(tmp_path, scenario)


def test_probes_report_ready_and_alive_with_a_writable_store(tmp_path: Path) -> None:
    """/ready is 200 after spool replay and a probe write; the probe marker sits under _collector/."""

    async def scenario(client: httpx.AsyncClient) -> None:
        ready = await client.get("/ready")
        assert ready.status_code == 200 and ready.json()["spoolReplayed"] and ready.json()["storeVerified"]
        assert (await client.get("/healthz")).status_code == 200
        assert len(list((tmp_path / "store" / "_collector" / "probes").iterdir())) == 1

    run(tmp_path, scenario)


def test_not_ready_while_the_store_cannot_be_written(tmp_path: Path) -> None:
    """A store root that cannot be created keeps /ready at 503 while /healthz stays 200."""
    (tmp_path / "file").write_text("not a directory")

    async def scenario(client: httpx.AsyncClient) -> None:
        ready = await client.get("/ready")
        assert ready.status_code == 503 and ready.json()["storeVerified"] is False
        assert (await client.get("/healthz")).status_code == 200

    run(tmp_path, scenario, store_uri=str(tmp_path / "file" / "store"))


def test_full_batch_is_written_without_waiting_for_shutdown(tmp_path: Path) -> None:
    """maxBatchRecords paired rows land in the store while the collector keeps running."""

    async def scenario(client: httpx.AsyncClient) -> None:
        for n in range(2):
            request, response = v1_pair(n)
            assert (await post(client, f"p{n}", REQUEST, request)).status_code == 200
            assert (await post(client, f"p{n}", RESPONSE, response)).status_code == 200
        deadline = time.monotonic() + 5
        while read_local_store(tmp_path / "store") is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        table = read_local_store(tmp_path / "store")
        assert table is not None and sorted(table.column("request_id").to_pylist()) == ["p0", "p1"]
        assert await metric(client, "mlops_collector_records_written_total", model="iris", version="2") == 2

    run(tmp_path, scenario, max_batch_records=2)


def test_shutdown_drains_buffered_rows_to_the_store(tmp_path: Path) -> None:
    """Leaving the app (lifespan shutdown) writes what was buffered, with the store columns and layout."""

    async def scenario(client: httpx.AsyncClient) -> None:
        request, response = v1_pair(4)
        await post(client, "d1", REQUEST, request)
        await post(client, "d1", RESPONSE, response)
        assert read_local_store(tmp_path / "store") is None

    run(tmp_path, scenario)
    table = read_local_store(tmp_path / "store")
    assert table is not None
    assert table.to_pylist()[0] | {"timestamp": None, "inference_id": None} == {
        "request_id": "d1",
        "inference_id": None,
        "timestamp": None,
        "model": "iris",
        "version": "2",
        "input.0": 4.0,
        "input.1": 2.0,
        "input.2": 1.5,
        "input.3": 0.25,
        "output.prediction": 1.0,
    }
    [parquet] = list((tmp_path / "store").rglob("*.parquet"))
    assert parquet.relative_to(tmp_path / "store").parts[:4] == ("iris", "2", "date=2026-03-04", "hour=05")


def test_a_sampled_out_inference_is_answered_200_and_not_stored(tmp_path: Path) -> None:
    """KServe's logger counts anything but 200 as an error, so leaving an inference out is a 200."""
    from serving.collector.service import in_sample

    kept, left_out = next(i for i in map(str, range(1000)) if in_sample(i, 0.5)), next(
        i for i in map(str, range(1000)) if not in_sample(i, 0.5)
    )

    async def scenario(client: httpx.AsyncClient) -> None:
        request, response = v1_pair(1)
        for event_id, stored in ((kept, True), (left_out, False)):
            for event_type, body in ((REQUEST, request), (RESPONSE, response)):
                answer = await post(client, event_id, event_type, body)
                assert answer.status_code == 200 and answer.json()["stored"] is stored
        assert await metric(client, "mlops_collector_events_sampled_out_total", model="iris", version="2", event_type="request") == 1

    run(tmp_path, scenario, models=[{"inferenceService": "iris", "sampleRate": 0.5}])
    assert read_local_store(tmp_path / "store").column("request_id").to_pylist() == [kept]
