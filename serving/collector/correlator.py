"""Pair the request and response events of one inference (same event id) into store rows.

KServe queues both halves to a pool of workers, so they arrive in either order, and the response
half never comes when the model answered with an error (the logger only logs 200 responses). A
half waits `timeout` seconds for its partner and is then written alone, with the other side's
columns empty. An InferenceService logging one side only (`logger.mode: request|response`) is
written at once.

Row `request_id` is the event id (the caller's `Ce-Id` header, else a UUID KServe made up); a
request of n > 1 instances gives rows `<id>/0` .. `<id>/<n-1>`, so labels can be joined per row.
Row `inference_id` is the id the collector gave the inference's request half (the response half
when it comes alone) on receiving it, kept in the spool: the same when a crash makes the collector write the inference again,
different for two inferences whose callers reused a Ce-Id. (`inference_id`, `request_id`) is
unique per stored row, so consumers deduplicate on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import takewhile, zip_longest
from typing import Any, Literal

from serving.collector.events import InferenceEvent
from serving.collector.spool import SpoolPosition

StoreRow = dict[str, Any]
LoggerMode = Literal["all", "request", "response"]


@dataclass(frozen=True)
class Inference:
    """The rows of one inference for one model version, and the spool lines holding its events."""

    model: str
    version: str
    time: datetime
    rows: tuple[StoreRow, ...]
    positions: tuple[SpoolPosition, ...]


@dataclass
class _Halves:
    arrived_at: float
    request: InferenceEvent | None = None
    response: InferenceEvent | None = None
    positions: list[SpoolPosition] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return max(len(self.request.rows) if self.request else 0, len(self.response.rows) if self.response else 0)


class Correlator:
    def __init__(self, timeout_seconds: float, logger_mode: Callable[[str], LoggerMode]):
        self._timeout = timeout_seconds
        self._logger_mode = logger_mode
        self._waiting: dict[tuple[str, str, str], _Halves] = {}
        self.waiting_rows = 0

    def add(self, event: InferenceEvent, position: SpoolPosition, now: float) -> list[Inference]:
        """Inferences completed by `event` (none while its partner is still expected)."""
        if self._logger_mode(event.inference_service) != "all":
            return [_inference(_Halves(now, positions=[position], **{event.kind: event}))]
        key = (event.namespace, event.inference_service, event.event_id)
        completed: list[Inference] = []
        halves = self._waiting.get(key)
        if halves is not None and getattr(halves, event.kind) is not None:
            # Same id and side twice: a caller reusing its Ce-Id. Keep both, as separate inferences.
            completed.append(self._complete(key))
            halves = None
        if halves is None:
            halves = self._waiting[key] = _Halves(now)
        self.waiting_rows -= halves.row_count
        setattr(halves, event.kind, event)
        halves.positions.append(position)
        self.waiting_rows += halves.row_count
        if halves.request is not None and halves.response is not None:
            completed.append(self._complete(key))
        return completed

    def expire(self, now: float) -> list[Inference]:
        """Halves that waited longer than the timeout, written without their partner."""
        # Insertion order is arrival order, so the expired ones are a prefix.
        expired = list(takewhile(lambda key: now - self._waiting[key].arrived_at >= self._timeout, self._waiting))
        return [self._complete(key) for key in expired]

    def drain(self) -> list[Inference]:
        """Every waiting half, for shutdown: nothing is left behind in memory."""
        return [self._complete(key) for key in list(self._waiting)]

    def _complete(self, key: tuple[str, str, str]) -> Inference:
        halves = self._waiting.pop(key)
        self.waiting_rows -= halves.row_count
        return _inference(halves)


def _inference(halves: _Halves) -> Inference:
    primary = halves.request or halves.response
    assert primary is not None, "a pairing always holds at least one half"
    requests = halves.request.rows if halves.request else ()
    responses = halves.response.rows if halves.response else ()
    count = halves.row_count
    rows = []
    for index, (inputs, outputs) in enumerate(zip_longest(requests, responses, fillvalue={})):
        row: StoreRow = {
            "request_id": primary.event_id if count == 1 else f"{primary.event_id}/{index}",
            "inference_id": primary.received_id,
            "timestamp": primary.time,
            "model": primary.model,
            "version": primary.version,
        }
        row.update({f"input.{name}": value for name, value in inputs.items()})
        row.update({f"output.{name}": value for name, value in outputs.items()})
        rows.append(row)
    return Inference(primary.model, primary.version, primary.time, tuple(rows), tuple(halves.positions))
