"""The collector's pipeline: spool -> pair request/response -> batch per model version -> store.

Every step runs on the event loop except file and network I/O (spool fsync, Parquet encoding,
store writes), which run in worker threads. One write runs at a time; a failed write puts its
rows back and is retried with exponential backoff (1 s doubling to 30 s) while new events keep
being spooled, until `max_buffered_records` rows wait and new events get 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

from serving.collector.batcher import Batch, Batcher
from serving.collector.config import CollectorConfig
from serving.collector.correlator import Correlator, Inference, LoggerMode
from serving.collector.events import EventRejected, InferenceEvent
from serving.collector.metrics import CollectorMetrics
from serving.collector.parquet import encode_rows, new_object_key, partition_prefix
from serving.collector.spool import Spool, SpoolError, SpoolPosition
from serving.collector.store import STORE_ERRORS, ObjectStore, probe

LOG = logging.getLogger(__name__)
_HASH_SPACE = float(2**64)


def in_sample(inference_id: str, rate: float) -> bool:
    """Whether the inference falls in a `rate` sample: a function of its id alone, so its request
    and response agree, on every replica and after a replay."""
    if rate >= 1:
        return True
    position = int.from_bytes(hashlib.sha256(inference_id.encode()).digest()[:8], "big") / _HASH_SPACE
    return position < rate
FIRST_RETRY_SECONDS = 1.0
LAST_RETRY_SECONDS = 30.0


class Collector:
    def __init__(
        self,
        config: CollectorConfig,
        store: ObjectStore,
        spool: Spool,
        metrics: CollectorMetrics,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._config = config
        self._store = store
        self._spool = spool
        self._metrics = metrics
        self._clock = clock
        self._correlator = Correlator(config.pair_timeout_seconds, self._logger_mode)
        self._batcher = Batcher(config.max_batch_records, config.max_batch_age_seconds)
        self._write_lock = asyncio.Lock()
        self._flush_task: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._retry_delay = FIRST_RETRY_SECONDS
        self.replayed = False
        self.store_verified = False
        metrics.buffered_records.set_function(lambda: self.buffered_rows)

    @property
    def buffered_rows(self) -> int:
        return self._batcher.buffered_rows + self._correlator.waiting_rows

    @property
    def overloaded(self) -> bool:
        return self.buffered_rows >= self._config.max_buffered_records

    @property
    def ready(self) -> bool:
        return self.replayed and self.store_verified and not self.overloaded

    def _logger_mode(self, inference_service: str) -> LoggerMode:
        settings = self._config.model_for(inference_service)
        return settings.logger_mode if settings else "all"

    async def start(self) -> None:
        """Re-ingest what an earlier run spooled but did not write, then check the store."""
        for entry in await asyncio.to_thread(self._spool.replay):
            self._ingest(InferenceEvent.from_json(entry.document), entry.position)
        self.replayed = True
        await self.verify_store()

    async def verify_store(self) -> None:
        try:
            await asyncio.to_thread(probe, self._store)
        except STORE_ERRORS as error:
            LOG.warning("payload store %s is not writable yet: %s", self._store.uri, error)
            return
        LOG.info("payload store %s is writable", self._store.uri)
        self.store_verified = True

    async def accept(self, event: InferenceEvent) -> bool:
        """Spool `event` durably and feed it to pairing; returns only once it is on disk.

        False: the model's sample rate leaves this inference out; nothing is stored.
        """
        settings = self._config.model_for(event.inference_service)
        if settings is not None and not in_sample(event.event_id, settings.sample_rate):
            self._metrics.events_sampled_out.labels(event.model, event.version, event.kind).inc()
            return False
        if self.overloaded:
            raise EventRejected(
                503, "overloaded", f"{self.buffered_rows} rows are waiting for the store (limit {self._config.max_buffered_records})"
            )
        # Shielded: a client hanging up mid-fsync must not leave a spooled event un-ingested.
        await asyncio.shield(self._spool_and_ingest(event))
        return True

    async def _spool_and_ingest(self, event: InferenceEvent) -> None:
        try:
            position = await self._spool.append(event.to_json())
        except SpoolError as error:
            raise EventRejected(503, "spool_unavailable", str(error)) from error
        self._metrics.events_received.labels(event.model, event.version, event.kind).inc()
        self._ingest(event, position)

    def _ingest(self, event: InferenceEvent, position: SpoolPosition) -> None:
        full = [self._buffer(i) for i in self._correlator.add(event, position, self._clock())]
        if any(full) and (self._flush_task is None or self._flush_task.done()):
            self._flush_task = asyncio.create_task(self.flush_due())

    def _buffer(self, inference: Inference) -> bool:
        if not inference.rows:
            self._release(inference)
            return False
        return self._batcher.add(inference, self._clock())

    async def tick(self) -> None:
        """Periodic work: give up waiting for partners, write due batches, re-check the store."""
        for inference in self._correlator.expire(self._clock()):
            self._buffer(inference)
        await self.flush_due()
        if not self.store_verified:
            await self.verify_store()

    async def flush_due(self) -> None:
        async with self._write_lock:
            if self._clock() < self._retry_at:
                return
            await self._write(self._batcher.take_due(self._clock()))

    async def drain(self) -> None:
        """Shutdown: write everything, unpaired halves included; what fails stays in the spool."""
        for inference in self._correlator.drain():
            self._buffer(inference)
        async with self._write_lock:
            await self._write(self._batcher.take_all())
        left = self.buffered_rows
        if left:
            LOG.error("shutdown with %d row(s) unwritten; they stay in spool %s for the next start", left, self._spool.directory)
        self._spool.close()

    async def _write(self, batches: list[Batch]) -> None:
        for position, batch in enumerate(batches):
            try:
                await self._write_batch(batch)
            except STORE_ERRORS as error:
                model, version = batch.key
                self._metrics.write_failures.labels(model, version).inc()
                LOG.error("writing %s/%s to %s failed, retrying in %.0f s: %s", model, version, self._store.uri, self._retry_delay, error)
                for unwritten in batches[position:]:
                    self._batcher.put_back(unwritten)
                self._retry_at = self._clock() + self._retry_delay
                self._retry_delay = min(self._retry_delay * 2, LAST_RETRY_SECONDS)
                return
        self._retry_delay = FIRST_RETRY_SECONDS

    async def _write_batch(self, batch: Batch) -> None:
        """One file per hour partition; a partition is released as soon as its file is stored."""
        model, version = batch.key
        partitions: dict[str, list[Inference]] = {}
        for inference in batch.inferences:
            partitions.setdefault(partition_prefix(model, version, inference.time), []).append(inference)
        while partitions:
            prefix, inferences = next(iter(partitions.items()))
            rows = [row for inference in inferences for row in inference.rows]
            started = time.perf_counter()
            data = await asyncio.to_thread(encode_rows, rows)
            await asyncio.to_thread(self._store.put, new_object_key(prefix), data)
            self._metrics.batch_write_seconds.observe(time.perf_counter() - started)
            self._metrics.records_written.labels(model, version).inc(len(rows))
            stored = partitions.pop(prefix)
            batch.discard(stored)
            # Only now may their events leave the spool; replay starts after them from now on.
            for inference in stored:
                self._release(inference)
            self._spool.record_flushed()

    def _release(self, inference: Inference) -> None:
        for position in inference.positions:
            self._spool.release(position)
