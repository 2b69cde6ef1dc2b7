"""Write-ahead log: an event is appended and fsync'ed here before the collector acknowledges it.

The spool is a directory of append-only segments `segment-<n>.wal`, one line per event:
`<crc32 hex> <json>`. Appends from concurrent requests are group-committed (one write and one
fsync for every event that arrived while the previous fsync ran) and each caller is answered only
after its line is on disk. Every event holds a reference on its segment until the Parquet file
containing its rows is in the store; a segment nobody references is deleted (the active one is
deleted and replaced by a fresh one), so after a clean drain the spool is empty.

On start-up `replay()` returns every intact line of the segments left behind (a crash, kill -9, a
failed write); the collector feeds them through pairing and batching again. A line torn by a
crash mid-write fails its checksum and is skipped: it was never acknowledged. Delivery is
therefore at least once: a crash between writing a Parquet file and deleting its segment
writes those rows again on replay, with the same `request_id`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
SEGMENT_GLOB = "segment-*.wal"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


class SpoolError(OSError):
    """An event could not be made durable (disk full, spool volume gone); it must not be acknowledged."""


@dataclass(frozen=True)
class SpooledEntry:
    segment: int
    document: dict[str, Any]


def encode_line(document: dict[str, Any]) -> bytes:
    payload = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def decode_line(line: bytes) -> dict[str, Any] | None:
    """The document of an intact line; None for a torn or corrupted one."""
    checksum, _, payload = line.rstrip(b"\n").partition(b" ")
    try:
        if int(checksum, 16) != zlib.crc32(payload):
            return None
        return json.loads(payload)
    except ValueError:
        return None


class Spool:
    def __init__(self, directory: Path, max_segment_bytes: int = DEFAULT_SEGMENT_BYTES):
        self.directory = directory
        self._max_segment_bytes = max_segment_bytes
        self._references: dict[int, int] = {}
        self._active = 0
        self._fd: int | None = None
        self._size = 0
        self._queue: list[tuple[bytes, asyncio.Future[int]]] = []
        self._committing = False

    def segment_path(self, number: int) -> Path:
        return self.directory / f"segment-{number:012d}.wal"

    def segment_files(self) -> list[Path]:
        return sorted(self.directory.glob(SEGMENT_GLOB))

    def replay(self) -> list[SpooledEntry]:
        """Open the spool; every intact event left by an earlier run, oldest first."""
        self.directory.mkdir(parents=True, exist_ok=True)
        entries: list[SpooledEntry] = []
        torn = 0
        highest = -1
        for path in self.segment_files():
            number = int(path.stem.removeprefix("segment-"))
            highest = max(highest, number)
            documents = [decode_line(line) for line in path.read_bytes().splitlines()]
            torn += documents.count(None)
            found = [SpooledEntry(number, doc) for doc in documents if doc is not None]
            if found:
                self._references[number] = len(found)
                entries.extend(found)
            else:
                path.unlink()
        self._active = highest + 1
        LOG.info(
            "spool %s: replaying %d event(s) from %d segment(s), skipping %d torn line(s)",
            self.directory, len(entries), len(self._references), torn,
        )
        return entries

    async def append(self, document: dict[str, Any]) -> int:
        """Make `document` durable; returns the segment holding it (to `release` later)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((encode_line(document), future))
        if not self._committing:
            self._committing = True
            asyncio.create_task(self._commit_queued())
        return await future

    def release(self, segment: int) -> None:
        """One event of `segment` is in the store; delete the segment once none is left."""
        self._references[segment] -= 1
        if self._references[segment] > 0:
            return
        del self._references[segment]
        if segment != self._active:
            self.segment_path(segment).unlink(missing_ok=True)
        elif not self._committing:
            self._recycle_active()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def _commit_queued(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                segment = self._active
                try:
                    await asyncio.to_thread(self._write, b"".join(line for line, _ in batch))
                except OSError as error:
                    failure = SpoolError(error.errno, f"cannot append to spool {self.segment_path(segment)}: {error.strerror}")
                    for _, future in batch:
                        future.set_exception(failure)
                    self._abandon_active()
                    continue
                self._references[segment] = self._references.get(segment, 0) + len(batch)
                for _, future in batch:
                    future.set_result(segment)
                if self._size >= self._max_segment_bytes:
                    self._rotate()
        finally:
            self._committing = False
        if self._active not in self._references and self._fd is not None:
            self._recycle_active()

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            self._fd = os.open(self.segment_path(self._active), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._size = 0
            _fsync_directory(self.directory)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)
        self._size += len(data)

    def _rotate(self) -> None:
        self.close()
        self._active += 1

    def _abandon_active(self) -> None:
        """After a failed append, continue in a new segment, so no later line follows a torn one."""
        self.close()
        if self._active not in self._references:
            self.segment_path(self._active).unlink(missing_ok=True)
        self._active += 1

    def _recycle_active(self) -> None:
        """The active segment holds only events already in the store: drop it, start afresh."""
        self.close()
        self.segment_path(self._active).unlink(missing_ok=True)
        self._active += 1


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
