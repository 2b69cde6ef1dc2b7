"""Input partitions under the batch input prefix, and the markers that say one is scored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath

import pyarrow.fs as pafs

from monitoring.drift_job.status import MissingData
from monitoring.drift_job.storage import Location

PARQUET_SUFFIXES = (".parquet", ".pq")
SCORED_FILE = "scored.parquet"
MARKER_FILE = "_SUCCESS"


@dataclass(frozen=True)
class Partition:
    name: str
    files: tuple[str, ...]  # filesystem paths, for pyarrow.dataset


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def list_partitions(source: Location) -> list[Partition]:
    """Directories directly under the prefix (their Parquet files, at any depth) and Parquet files
    directly in it, sorted by name; hidden (`.x`) and internal (`_x`) entries are skipped."""
    if source.kind() != pafs.FileType.Directory:
        raise MissingData(f"batch input {source.describe()} does not exist or is not a prefix")
    found = []
    for info in source.filesystem.get_file_info(pafs.FileSelector(source.root, recursive=False)):
        name = PurePosixPath(info.path).name
        if _hidden(name):
            continue
        if info.type == pafs.FileType.Directory:
            files = tuple(source.path(f) for f in source.files(name) if f.endswith(PARQUET_SUFFIXES))
            if files:
                found.append(Partition(name, files))
        elif name.endswith(PARQUET_SUFFIXES):
            found.append(Partition(PurePosixPath(name).stem, (info.path,)))
    return sorted(found, key=lambda partition: partition.name)


def is_scored(target: Location, partition: Partition) -> bool:
    return target.kind(f"{partition.name}/{MARKER_FILE}") == pafs.FileType.File


def mark_scored(target: Location, partition: Partition, details: dict) -> None:
    target.write_bytes(f"{partition.name}/{MARKER_FILE}", (json.dumps(details, indent=2, sort_keys=True) + "\n").encode())
