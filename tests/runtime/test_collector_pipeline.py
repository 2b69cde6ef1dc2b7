"""Pairing, batching, the write-ahead spool, Parquet encoding and the pipeline that ties them."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import EndpointConnectionError

from serving.collector.batcher import Batcher
from serving.collector.config import CollectorConfig, ModelSettings
from serving.collector.correlator import Correlator, Inference
from serving.collector.events import InferenceEvent
from serving.collector.metrics import CollectorMetrics
from serving.collector.parquet import encode_rows, partition_prefix
from serving.collector.service import Collector, in_sample
from serving.collector.spool import Spool, SpoolPosition, decode_line, encode_line

T0 = datetime(2026, 5, 6, 7, 59, 59, tzinfo=timezone.utc)


def event(event_id: str, kind: str, rows: tuple[dict, ...] = ({"0": 1.0},), service: str = "iris", time: datetime = T0, version: str = "1") -> InferenceEvent:
    return InferenceEvent(event_id, kind, service, version, service, "mlops-serving", time, rows)  # type: ignore[arg-type]


def inference(rows: int, model: str = "iris", version: str = "1") -> Inference:
    return Inference(model, version, T0, tuple({"request_id": str(i)} for i in range(rows)), (SpoolPosition(0, 0),))


# --- Correlator -----------------------------------------------------------------------------


def test_request_and_response_with_the_same_id_become_one_row() -> None:
    """The response completes its request, in either arrival order, into one row with both sides."""
    correlator = Correlator(30, lambda _: "all")
    response, request = event("a", "response", ({"prediction": 2},)), event("a", "request", ({"0": 5.0, "1": 6.0},))
    assert correlator.add(response, position=SpoolPosition(1, 0), now=0) == []
    [done] = correlator.add(request, position=SpoolPosition(2, 0), now=1)
    assert done.rows == (
        {"request_id": "a", "inference_id": request.received_id, "timestamp": T0, "model": "iris", "version": "1",
         "input.0": 5.0, "input.1": 6.0, "output.prediction": 2},
    )  # fmt: skip
    assert done.positions == (SpoolPosition(1, 0), SpoolPosition(2, 0))
    assert correlator.waiting_rows == 0


def test_batched_request_gives_one_row_per_instance_with_indexed_ids() -> None:
    """n instances -> n rows `<id>/<i>`, instance i joined with prediction i."""
    correlator = Correlator(30, lambda _: "all")
    correlator.add(event("b", "request", ({"0": 1}, {"0": 2})), 0, 0)
    [done] = correlator.add(event("b", "response", ({"prediction": 10}, {"prediction": 20})), 0, 0)
    assert [(r["request_id"], r["input.0"], r["output.prediction"]) for r in done.rows] == [("b/0", 1, 10), ("b/1", 2, 20)]


def test_unpaired_half_is_released_alone_after_the_timeout() -> None:
    """A request whose response never comes (model error) is written without outputs after the timeout."""
    correlator = Correlator(30, lambda _: "all")
    correlator.add(event("c", "request"), 0, now=100)
    assert correlator.expire(now=129.9) == []
    assert correlator.waiting_rows == 1
    [done] = correlator.expire(now=130)
    assert "output.prediction" not in done.rows[0] and done.rows[0]["input.0"] == 1.0


def test_request_only_logger_mode_writes_without_waiting() -> None:
    """An InferenceService logging requests only never waits for a response."""
    correlator = Correlator(30, lambda service: "request" if service == "iris" else "all")
    assert len(correlator.add(event("d", "request"), 0, 0)) == 1
    assert correlator.add(event("d", "request", service="other"), 0, 0) == []


def test_a_reused_id_keeps_both_inferences() -> None:
    """Two requests with the same Ce-Id are both kept: the first is released when the second arrives."""
    correlator = Correlator(30, lambda _: "all")
    correlator.add(event("e", "request", ({"0": 1},)), 0, 0)
    [first] = correlator.add(event("e", "request", ({"0": 2},)), 0, 0)
    assert first.rows[0]["input.0"] == 1
    assert [i.rows[0]["input.0"] for i in correlator.drain()] == [2]


# --- Batcher --------------------------------------------------------------------------------


def test_batch_is_due_at_the_record_limit() -> None:
    """Reaching max_records rows makes the batch due at once."""
    batcher = Batcher(max_records=3, max_age_seconds=60)
    assert batcher.add(inference(2), now=0) is False
    assert batcher.add(inference(1), now=0) is True
    [batch] = batcher.take_due(now=0)
    assert batch.row_count == 3 and batcher.buffered_rows == 0


def test_batch_is_due_at_the_age_limit() -> None:
    """A batch younger than max_age is held; at max_age it is due."""
    batcher = Batcher(max_records=100, max_age_seconds=60)
    batcher.add(inference(1), now=10)
    assert batcher.take_due(now=69.9) == []
    assert len(batcher.take_due(now=70)) == 1


def test_batches_are_kept_per_model_and_version() -> None:
    """Each model version fills its own batch."""
    batcher = Batcher(max_records=2, max_age_seconds=60)
    batcher.add(inference(1, version="1"), 0)
    batcher.add(inference(1, version="2"), 0)
    assert batcher.take_due(0) == []
    assert sorted(b.key for b in batcher.take_all()) == [("iris", "1"), ("iris", "2")]


def test_failed_batch_goes_back_ahead_of_newer_rows() -> None:
    """put_back keeps the failed rows first and the batch's original age."""
    batcher = Batcher(max_records=100, max_age_seconds=60)
    batcher.add(inference(1), now=0)
    [failed] = batcher.take_due(now=60)
    batcher.add(inference(2), now=61)
    batcher.put_back(failed)
    [batch] = batcher.take_due(now=61)
    assert [len(i.rows) for i in batch.inferences] == [1, 2] and batch.opened_at == 0


# --- Spool ----------------------------------------------------------------------------------


def test_spool_lines_detect_tearing() -> None:
    """A line cut short or altered fails its checksum."""
    line = encode_line({"id": "x"})
    assert decode_line(line) == {"id": "x"}
    assert decode_line(line[:-4]) is None
    assert decode_line(line.replace(b"x", b"y")) is None


def test_spool_replays_unreleased_events_and_skips_torn_lines(tmp_path: Path) -> None:
    """Events of a segment not fully released come back on the next start (at least once); a torn tail does not."""

    async def first_run() -> list[SpoolPosition]:
        spool = Spool(tmp_path)
        spool.replay()
        positions = [await spool.append({"n": n}) for n in range(3)]
        # Released but the marker not yet moved (a crash before record_flushed): replayed.
        spool.release(positions[0])
        spool.close()
        return positions

    asyncio.run(first_run())
    [segment_file] = Spool(tmp_path).segment_files()
    with open(segment_file, "ab") as handle:
        handle.write(encode_line({"n": 99})[:10])
    replayed = Spool(tmp_path).replay()
    assert len(replayed) == 3 and {e.document["n"] for e in replayed} == {0, 1, 2}


def test_spool_replays_only_lines_the_marker_does_not_list_as_stored(tmp_path: Path) -> None:
    """Events 0 and 2 stored (2 out of order, as another model's batch or a late response makes
    it): the marker names event 1 as the first pending and event 2 as stored; replay resends 1 and 3."""

    async def first_run() -> list[SpoolPosition]:
        spool = Spool(tmp_path)
        spool.replay()
        positions = [await spool.append({"n": n}) for n in range(4)]
        spool.release(positions[0])
        spool.release(positions[2])
        spool.record_flushed()
        spool.close()
        return positions

    positions = asyncio.run(first_run())
    assert Spool(tmp_path).marker_path(0).read_text() == f"{positions[1].offset} {positions[2].offset}"
    replayed = Spool(tmp_path).replay()
    assert [e.document["n"] for e in replayed] == [1, 3]
    assert [e.position for e in replayed] == [positions[1], positions[3]]


def test_an_unreadable_marker_replays_the_whole_segment(tmp_path: Path) -> None:
    """A marker cut short (power loss before the page cache reached disk) only means more is
    resent, never less: every event of the segment comes back."""

    async def first_run() -> None:
        spool = Spool(tmp_path)
        spool.replay()
        positions = [await spool.append({"n": n}) for n in range(3)]
        spool.release(positions[0])
        spool.record_flushed()
        spool.close()

    asyncio.run(first_run())
    Spool(tmp_path).marker_path(0).write_text("12x")
    assert [e.document["n"] for e in Spool(tmp_path).replay()] == [0, 1, 2]


def test_spool_deletes_a_segment_once_all_its_events_are_released(tmp_path: Path) -> None:
    """After every event is released the spool directory holds no segment."""

    async def run() -> None:
        spool = Spool(tmp_path)
        spool.replay()
        positions = await asyncio.gather(*(spool.append({"n": n}) for n in range(50)))
        assert spool.segment_files()
        for position in positions:
            spool.release(position)

    asyncio.run(run())
    assert Spool(tmp_path).segment_files() == []


def test_spool_group_commits_concurrent_appends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Appends that arrive during an fsync share the next one: 200 events need far fewer than 200 fsyncs."""
    import serving.collector.spool as spool_module

    calls: list[int] = []
    real_fsync = spool_module.os.fsync
    monkeypatch.setattr(spool_module.os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))

    async def run() -> None:
        spool = Spool(tmp_path)
        spool.replay()
        await asyncio.gather(*(spool.append({"n": n}) for n in range(200)))
        spool.close()

    asyncio.run(run())
    assert len(Spool(tmp_path).replay()) == 200
    assert len(calls) < 20


def test_spool_rotates_segments_at_the_size_limit(tmp_path: Path) -> None:
    """Past max_segment_bytes a new segment starts; the old one goes once its events are released."""

    async def run() -> None:
        spool = Spool(tmp_path, max_segment_bytes=100)
        spool.replay()
        first = await spool.append({"pad": "x" * 120})
        second = await spool.append({"n": 2})
        assert first != second and len(spool.segment_files()) == 2
        spool.release(first)
        assert len(spool.segment_files()) == 1

    asyncio.run(run())


# --- Parquet --------------------------------------------------------------------------------


def test_parquet_rows_have_the_store_columns_and_stable_types() -> None:
    """Key columns first and typed; numbers as float64; mixed-type values as JSON text."""
    keys = {"inference_id": "9f", "timestamp": T0, "model": "m", "version": "1"}
    rows = [
        {"request_id": "a", **keys, "input.x": 1, "input.c": "u", "output.prediction": 0, "input.mix": 1},
        {"request_id": "b", **keys, "input.x": 2.5, "input.c": None, "input.mix": "two"},
    ]
    table = pq.read_table(io.BytesIO(encode_rows(rows)))
    assert table.column_names == [
        "request_id", "inference_id", "timestamp", "model", "version", "input.x", "input.c", "input.mix", "output.prediction"
    ]  # fmt: skip
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("input.x").type == pa.float64()
    assert table.column("input.mix").to_pylist() == ["1", '"two"']
    assert table.column("output.prediction").to_pylist() == [0.0, None]


def test_values_arrow_cannot_hold_become_json_text_instead_of_failing_the_batch() -> None:
    """An integer too big even for float64 or a struct with a 70-bit integer still encodes."""
    keys = {"inference_id": "9f", "timestamp": T0, "model": "m", "version": "1"}
    rows = [
        {"request_id": "a", **keys, "input.big": 10**400, "input.obj": {"n": 2**70}},
        {"request_id": "b", **keys, "input.big": 1, "input.obj": None},
    ]
    table = pq.read_table(io.BytesIO(encode_rows(rows)))
    assert table.column("input.big").to_pylist() == [str(10**400), "1"]
    assert table.column("input.obj").to_pylist() == [f'{{"n": {2**70}}}', None]


def test_partition_prefix_uses_the_utc_hour_of_the_inference() -> None:
    """Files are laid out <model>/<version>/date=YYYY-MM-DD/hour=HH."""
    assert partition_prefix("iris", "3", T0) == "iris/3/date=2026-05-06/hour=07"


# --- Pipeline -------------------------------------------------------------------------------


class MemoryStore:
    uri = "memory://"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.failing = False

    def put(self, key: str, data: bytes) -> None:
        if self.failing:
            raise EndpointConnectionError(endpoint_url="http://store")
        self.objects[key] = data

    def rows(self) -> list[dict]:
        return [r for k, v in sorted(self.objects.items()) if k.endswith(".parquet") for r in pq.read_table(io.BytesIO(v)).to_pylist()]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def collector(tmp_path: Path, store: MemoryStore, clock: Clock, **settings: object) -> tuple[Collector, CollectorMetrics]:
    config = CollectorConfig(store_uri="/unused", spool_dir=tmp_path / "spool", **settings)  # type: ignore[arg-type]
    metrics = CollectorMetrics.create()
    return Collector(config, store, Spool(config.spool_dir), metrics, clock), metrics


def sample(metrics: CollectorMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_size_threshold_writes_a_batch_and_empties_the_spool(tmp_path: Path) -> None:
    """max_batch_records paired rows trigger one Parquet file; the written events leave the spool."""
    store, clock = MemoryStore(), Clock()

    async def run() -> tuple[Collector, CollectorMetrics]:
        pipeline, metrics = collector(tmp_path, store, clock, max_batch_records=3)
        await pipeline.start()
        for n in range(3):
            await pipeline.accept(event(f"r{n}", "request"))
            await pipeline.accept(event(f"r{n}", "response", ({"prediction": n},)))
        await pipeline.flush_due()
        return pipeline, metrics

    pipeline, metrics = asyncio.run(run())
    assert sorted(r["request_id"] for r in store.rows()) == ["r0", "r1", "r2"]
    assert sample(metrics, "mlops_collector_events_received_total", model="iris", version="1", event_type="request") == 3
    assert sample(metrics, "mlops_collector_records_written_total", model="iris", version="1") == 3
    assert sample(metrics, "mlops_collector_batch_write_seconds_count") == 1
    assert sample(metrics, "mlops_collector_buffered_records") == 0
    assert pipeline.buffered_rows == 0 and Spool(tmp_path / "spool").segment_files() == []


def test_age_threshold_writes_a_small_batch(tmp_path: Path) -> None:
    """Below the size limit, rows are written once the batch reaches max_batch_age_seconds."""
    store, clock = MemoryStore(), Clock()

    async def run() -> CollectorMetrics:
        pipeline, metrics = collector(tmp_path, store, clock, max_batch_age_seconds=10)
        await pipeline.start()
        await pipeline.accept(event("a", "request"))
        await pipeline.accept(event("a", "response"))
        clock.now += 9
        await pipeline.tick()
        assert store.rows() == [] and sample(metrics, "mlops_collector_buffered_records") == 1
        clock.now += 1
        await pipeline.tick()
        return metrics

    asyncio.run(run())
    assert [r["request_id"] for r in store.rows()] == ["a"]


def test_store_failure_keeps_rows_and_retries_with_backoff(tmp_path: Path) -> None:
    """A failed write counts a failure, keeps the rows (and their spool lines) and succeeds later."""
    store, clock = MemoryStore(), Clock()

    async def run() -> CollectorMetrics:
        pipeline, metrics = collector(tmp_path, store, clock, max_batch_age_seconds=1)
        await pipeline.start()
        store.failing = True
        await pipeline.accept(event("a", "request"))
        await pipeline.accept(event("a", "response"))
        clock.now += 1
        await pipeline.tick()
        assert sample(metrics, "mlops_collector_write_failures_total", model="iris", version="1") == 1
        assert Spool(tmp_path / "spool").segment_files() != []
        store.failing = False
        clock.now += 0.5
        await pipeline.tick()  # still inside the 1 s backoff
        assert store.rows() == []
        clock.now += 0.5
        await pipeline.tick()
        return metrics

    asyncio.run(run())
    assert [r["request_id"] for r in store.rows()] == ["a"]


def test_drain_writes_unpaired_halves_and_everything_buffered(tmp_path: Path) -> None:
    """Shutdown writes complete and half-complete inferences alike and leaves an empty spool."""
    store, clock = MemoryStore(), Clock()

    async def run() -> None:
        pipeline, _ = collector(tmp_path, store, clock)
        await pipeline.start()
        await pipeline.accept(event("paired", "request"))
        await pipeline.accept(event("paired", "response"))
        await pipeline.accept(event("alone", "request"))
        await pipeline.drain()

    asyncio.run(run())
    assert sorted(r["request_id"] for r in store.rows()) == ["alone", "paired"]
    assert Spool(tmp_path / "spool").segment_files() == []


def test_restart_replays_spooled_events_and_pairs_across_the_restart(tmp_path: Path) -> None:
    """A request spooled before a crash pairs with its response received after the restart."""
    store, clock = MemoryStore(), Clock()

    async def before_crash() -> None:
        pipeline, _ = collector(tmp_path, store, clock)
        await pipeline.start()
        await pipeline.accept(event("x", "request", ({"0": 7.0},)))

    async def after_restart() -> None:
        pipeline, _ = collector(tmp_path, store, clock)
        await pipeline.start()
        assert pipeline.buffered_rows == 1
        await pipeline.accept(event("x", "response", ({"prediction": 1},)))
        await pipeline.drain()

    asyncio.run(before_crash())
    asyncio.run(after_restart())
    [row] = store.rows()
    assert (row["request_id"], row["input.0"], row["output.prediction"]) == ("x", 7.0, 1.0)


def test_rows_of_one_batch_are_split_by_hour(tmp_path: Path) -> None:
    """Inferences either side of an hour boundary land in two hour partitions."""
    store, clock = MemoryStore(), Clock()
    later = replace(event("late", "request"), time=datetime(2026, 5, 6, 8, 0, 1, tzinfo=timezone.utc))

    async def run() -> None:
        pipeline, _ = collector(tmp_path, store, clock, models=[ModelSettings(inference_service="iris", logger_mode="request")])
        await pipeline.start()
        await pipeline.accept(event("early", "request"))
        await pipeline.accept(later)
        await pipeline.drain()

    asyncio.run(run())
    prefixes = sorted(key.rsplit("/", 1)[0] for key in store.objects if key.endswith(".parquet"))
    assert prefixes == ["iris/1/date=2026-05-06/hour=07", "iris/1/date=2026-05-06/hour=08"]


def test_overload_refuses_new_events_with_503(tmp_path: Path) -> None:
    """At max_buffered_records waiting rows, new events are refused (and not spooled)."""
    from serving.collector.events import EventRejected

    store, clock = MemoryStore(), Clock()

    async def run() -> None:
        pipeline, _ = collector(tmp_path, store, clock, max_buffered_records=2)
        await pipeline.start()
        await pipeline.accept(event("a", "request"))
        await pipeline.accept(event("b", "request"))
        assert not pipeline.ready
        with pytest.raises(EventRejected) as caught:
            await pipeline.accept(event("c", "request"))
        assert (caught.value.status, caught.value.reason) == (503, "overloaded")

    asyncio.run(run())


# --- Sampling -------------------------------------------------------------------------------


def test_sample_membership_depends_on_the_inference_id_alone() -> None:
    """Request and response (and every replica, and a replay) agree; the kept share is the rate."""
    ids = [f"inference-{n}" for n in range(20_000)]
    kept = [i for i in ids if in_sample(i, 0.2)]
    assert 0.19 < len(kept) / len(ids) < 0.21
    assert kept == [i for i in ids if in_sample(i, 0.2)]
    # A larger rate keeps a superset: raising it never drops an inference that was kept.
    assert set(kept) <= {i for i in ids if in_sample(i, 0.5)}
    assert all(in_sample(i, 1.0) for i in ids[:100])


def test_sampled_out_inferences_are_acknowledged_counted_and_not_stored(tmp_path: Path) -> None:
    store, clock = MemoryStore(), Clock()
    ids = [f"s{n}" for n in range(40)]
    expected = sorted(i for i in ids if in_sample(i, 0.25))
    assert 0 < len(expected) < len(ids)

    async def run() -> tuple[Collector, CollectorMetrics, list[bool]]:
        pipeline, metrics = collector(tmp_path, store, clock, models=[{"inferenceService": "iris", "sampleRate": 0.25}])
        await pipeline.start()
        answers = []
        for event_id in ids:
            answers.append(await pipeline.accept(event(event_id, "request")))
            answers.append(await pipeline.accept(event(event_id, "response", ({"prediction": 1},))))
        await pipeline.drain()
        return pipeline, metrics, answers

    pipeline, metrics, answers = asyncio.run(run())
    assert sorted(r["request_id"] for r in store.rows()) == expected
    assert answers.count(True) == 2 * len(expected)
    left_out = len(ids) - len(expected)
    assert sample(metrics, "mlops_collector_events_sampled_out_total", model="iris", version="1", event_type="request") == left_out
    assert sample(metrics, "mlops_collector_events_received_total", model="iris", version="1", event_type="response") == len(expected)
    assert Spool(tmp_path / "spool").segment_files() == []
