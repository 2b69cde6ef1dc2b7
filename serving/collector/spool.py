"""Write-ahead log: an event is appended and fsync'ed here before the collector acknowledges it.

The spool is a directory of append-only segments `segment-<n>.wal`, one line per event:
`<crc32 hex> <json>`. Appends from concurrent requests are group-committed (one write and one
fsync for every event that arrived while the previous fsync ran) and each caller is answered only
after its line is on disk, with the line's position (segment, byte offset).

Every line is pending until the Parquet file holding its rows is in the store. A segment with no
pending line is deleted (the active one is replaced by a fresh one), so after a clean drain the
spool is empty. Under steady load the active segment always has pending lines, so each store
write also rewrites the segment's flushed marker `segment-<n>.flushed`: the offset of its first
pending line, then the offsets of the lines after it that are stored already (inferences complete
out of arrival order: a response comes late, another model's batch is written first).

On start-up `replay()` returns every intact line the marker does not list as stored (a crash,
kill -9, a failed write); the collector feeds them through pairing and batching again. A line torn
by a crash mid-write fails its checksum and is skipped: it was never acknowledged. Delivery is at
least once, and only the rows of a store write whose marker update the crash prevented come twice,
with the same `inference_id`. The marker is replaced atomically (rename) but not fsync'ed: a
marker lost with the page cache (power loss, not kill -9) only makes replay resend more, never
less.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
SEGMENT_GLOB = "segment-*.wal"
FLUSHED_SUFFIX = ".flushed"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


class SpoolError(OSError):
    """An event could not be made durable (disk full, spool volume gone); it must not be acknowledged."""


@dataclass(frozen=True)
class SpoolPosition:
    """Where a line starts: its segment and byte offset."""

    segment: int
    offset: int


@dataclass(frozen=True)
class SpooledEntry:
    position: SpoolPosition
    document: dict[str, Any]


@dataclass
class _PendingLines:
    """Lines of one segment not yet in the store, by offset in append order; `released` holds
    the stored lines after the first pending one."""

    offsets: deque[int] = field(default_factory=deque)
    released: set[int] = field(default_factory=set)

    def release(self, offset: int) -> None:
        self.released.add(offset)
        while self.offsets and self.offsets[0] in self.released:
            self.released.discard(self.offsets.popleft())

    def marker(self) -> str:
        return " ".join(map(str, [self.offsets[0], *sorted(self.released)]))


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
        self._pending: dict[int, _PendingLines] = {}
        self._moved: set[int] = set()
        self._active = 0
        self._fd: int | None = None
        self._size = 0
        self._queue: list[tuple[bytes, asyncio.Future[int]]] = []
        self._committing = False

    def segment_path(self, number: int) -> Path:
        return self.directory / f"segment-{number:012d}.wal"

    def marker_path(self, number: int) -> Path:
        return self.segment_path(number).with_suffix(FLUSHED_SUFFIX)

    def segment_files(self) -> list[Path]:
        return sorted(self.directory.glob(SEGMENT_GLOB))

    def _read_marker(self, number: int) -> tuple[int, set[int]]:
        """The segment's first pending offset and the stored offsets after it; (0, none) when
        there is no marker or it cannot be read."""
        try:
            first, *stored = (int(field) for field in self.marker_path(number).read_text().split())
        except (OSError, ValueError):
            return 0, set()
        return first, set(stored)

    def replay(self) -> list[SpooledEntry]:
        """Open the spool; every intact event an earlier run left unflushed, oldest first."""
        self.directory.mkdir(parents=True, exist_ok=True)
        entries: list[SpooledEntry] = []
        torn = flushed = 0
        highest = -1
        for path in self.segment_files():
            number = int(path.stem.removeprefix("segment-"))
            highest = max(highest, number)
            first_pending, stored = self._read_marker(number)
            pending = _PendingLines()
            offset = 0
            for line in path.read_bytes().splitlines(keepends=True):
                position, offset = SpoolPosition(number, offset), offset + len(line)
                if position.offset < first_pending or position.offset in stored:
                    flushed += 1
                    continue
                document = decode_line(line)
                if document is None:
                    torn += 1
                    continue
                pending.offsets.append(position.offset)
                entries.append(SpooledEntry(position, document))
            if pending.offsets:
                self._pending[number] = pending
            else:
                self._delete_segment(number)
        self._active = highest + 1
        LOG.info(
            "spool %s: replaying %d event(s) from %d segment(s), skipping %d already stored and %d torn line(s)",
            self.directory, len(entries), len(self._pending), flushed, torn,
        )
        return entries

    async def append(self, document: dict[str, Any]) -> SpoolPosition:
        """Make `document` durable; returns the position of its line (to `release` later)."""
        future: asyncio.Future[SpoolPosition] = asyncio.get_running_loop().create_future()
        self._queue.append((encode_line(document), future))
        if not self._committing:
            self._committing = True
            asyncio.create_task(self._commit_queued())
        return await future

    def release(self, position: SpoolPosition) -> None:
        """The event at `position` is in the store; delete its segment once none is pending.

        `record_flushed` then writes it into the segment's marker, once per store write.
        """
        pending = self._pending[position.segment]
        pending.release(position.offset)
        if pending.offsets:
            self._moved.add(position.segment)
            return
        del self._pending[position.segment]
        self._moved.discard(position.segment)
        if position.segment != self._active:
            self._delete_segment(position.segment)
        elif not self._committing:
            self._recycle_active()

    def record_flushed(self) -> None:
        """Rewrite the marker of every segment with lines released since the last call."""
        for number in sorted(self._moved):
            pending = self._pending.get(number)
            if pending is not None:
                temporary = self.marker_path(number).with_suffix(".tmp")
                temporary.write_text(pending.marker())
                os.replace(temporary, self.marker_path(number))
        self._moved.clear()

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
                    start = await asyncio.to_thread(self._write, b"".join(line for line, _ in batch))
                except OSError as error:
                    failure = SpoolError(error.errno, f"cannot append to spool {self.segment_path(segment)}: {error.strerror}")
                    for _, future in batch:
                        future.set_exception(failure)
                    self._abandon_active()
                    continue
                pending = self._pending.setdefault(segment, _PendingLines())
                for line, future in batch:
                    pending.offsets.append(start)
                    future.set_result(SpoolPosition(segment, start))
                    start += len(line)
                if self._size >= self._max_segment_bytes:
                    self._rotate()
        finally:
            self._committing = False
        if self._active not in self._pending and self._fd is not None:
            self._recycle_active()

    def _write(self, data: bytes) -> int:
        """Append and fsync `data`; returns the offset it starts at."""
        if self._fd is None:
            self._fd = os.open(self.segment_path(self._active), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._size = 0
            _fsync_directory(self.directory)
        start = self._size
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)
        self._size += len(data)
        return start

    def _rotate(self) -> None:
        self.close()
        self._active += 1

    def _abandon_active(self) -> None:
        """After a failed append, continue in a new segment, so no later line follows a torn one."""
        self.close()
        if self._active not in self._pending:
            self._delete_segment(self._active)
        self._active += 1

    def _recycle_active(self) -> None:
        """The active segment holds only events already in the store: drop it, start afresh."""
        self.close()
        self._delete_segment(self._active)
        self._active += 1

    def _delete_segment(self, number: int) -> None:
        self.segment_path(number).unlink(missing_ok=True)
        self.marker_path(number).unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
