"""Buffer inferences per model and version until a batch is big enough or old enough to write.

An inference is never split across batches, so the spool segments it came from can be released
as soon as the batch holding it is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from serving.collector.correlator import Inference

BatchKey = tuple[str, str]


@dataclass
class Batch:
    key: BatchKey
    opened_at: float
    inferences: list[Inference] = field(default_factory=list)
    row_count: int = 0

    def add(self, inference: Inference) -> None:
        self.inferences.append(inference)
        self.row_count += len(inference.rows)

    def discard(self, written: list[Inference]) -> None:
        gone = {id(inference) for inference in written}
        self.inferences = [inference for inference in self.inferences if id(inference) not in gone]
        self.row_count = sum(len(inference.rows) for inference in self.inferences)


class Batcher:
    def __init__(self, max_records: int, max_age_seconds: float):
        self._max_records = max_records
        self._max_age = max_age_seconds
        self._open: dict[BatchKey, Batch] = {}

    @property
    def buffered_rows(self) -> int:
        return sum(batch.row_count for batch in self._open.values())

    def add(self, inference: Inference, now: float) -> bool:
        """Buffer `inference`; True when its batch has reached the size limit."""
        key = (inference.model, inference.version)
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = Batch(key, now)
        batch.add(inference)
        return batch.row_count >= self._max_records

    def take_due(self, now: float) -> list[Batch]:
        """Remove and return the batches that are full or older than the age limit."""
        due = [
            key
            for key, batch in self._open.items()
            if batch.row_count >= self._max_records or now - batch.opened_at >= self._max_age
        ]
        return [self._open.pop(key) for key in due]

    def take_all(self) -> list[Batch]:
        batches = list(self._open.values())
        self._open.clear()
        return batches

    def put_back(self, batch: Batch) -> None:
        """Return a batch whose write failed, ahead of what arrived since, keeping its age."""
        newer = self._open.pop(batch.key, None)
        if newer is not None:
            for inference in newer.inferences:
                batch.add(inference)
        self._open[batch.key] = batch
