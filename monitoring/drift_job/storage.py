"""Read and write files under a root URI (local path, file://, s3://, gs://) through one interface.

pyarrow's filesystems give S3 and GCS the same listing/reading/writing calls as a local disk, with
the clouds' standard credential chains (IRSA on EKS, Workload Identity on GKE). An S3-compatible
server (MinIO, moto) is selected with the standard `AWS_ENDPOINT_URL` variable.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import PurePosixPath

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from monitoring.drift_job.status import MissingData

TABLE_SUFFIXES = (".parquet", ".pq", ".csv")


@dataclass(frozen=True)
class Location:
    """A root URI and its filesystem; paths below it are relative, '/'-separated."""

    uri: str
    filesystem: pafs.FileSystem
    root: str

    @classmethod
    def of(cls, uri: str) -> "Location":
        target = uri.removeprefix("file://")
        try:
            filesystem, root = pafs.FileSystem.from_uri(target if "://" in target else _absolute(target))
        except (pa.ArrowInvalid, OSError) as error:
            raise MissingData(f"cannot open {uri!r}: {error}") from error
        return cls(uri, filesystem, root.rstrip("/"))

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}".rstrip("/") if relative else self.root

    def describe(self, relative: str = "") -> str:
        return f"{self.uri.rstrip('/')}/{relative}".rstrip("/") if relative else self.uri

    def kind(self, relative: str = "") -> pafs.FileType:
        return self.filesystem.get_file_info(self.path(relative)).type

    def files(self, relative: str = "") -> list[str]:
        """Data files directly or deeply under `relative`, sorted; hidden (`.x`) and internal (`_x`)
        entries are skipped, as Parquet dataset readers do (the collector writes temporaries there)."""
        selector = pafs.FileSelector(self.path(relative), recursive=True, allow_not_found=True)
        found = []
        for info in self.filesystem.get_file_info(selector):
            parts = PurePosixPath(info.path).relative_to(self.root).parts
            if info.type == pafs.FileType.File and info.path.endswith(TABLE_SUFFIXES) and not any(
                part.startswith((".", "_")) for part in parts
            ):
                found.append("/".join(parts))
        return sorted(found)

    def read_bytes(self, relative: str) -> bytes:
        with self.filesystem.open_input_stream(self.path(relative)) as stream:
            return stream.read()

    def write_bytes(self, relative: str, data: bytes) -> None:
        if isinstance(self.filesystem, pafs.LocalFileSystem):
            # Only disks need folders; on object stores create_dir would add empty marker objects.
            self.filesystem.create_dir(str(PurePosixPath(self.path(relative)).parent), recursive=True)
        with self.filesystem.open_output_stream(self.path(relative)) as stream:
            stream.write(data)

    def read_table(self, relative: str) -> pa.Table:
        data = self.read_bytes(relative)
        if self.path(relative).endswith(".csv"):
            return pa_csv.read_csv(io.BytesIO(data))
        return pq.read_table(pa.BufferReader(data))


def _absolute(path: str) -> str:
    return os.path.abspath(path)


def read_dataset(uri: str, what: str) -> pd.DataFrame:
    """A Parquet/CSV file, or every such file under a directory, as one DataFrame; `what` names the
    data in errors ("reference sample", "labels")."""
    location = Location.of(uri)
    kind = location.kind()
    if kind == pafs.FileType.File:
        tables = [location.read_table("")]
    elif kind == pafs.FileType.Directory:
        files = location.files()
        if not files:
            raise MissingData(f"{what} {uri!r} is a directory without {', '.join(TABLE_SUFFIXES)} files")
        tables = [location.read_table(name) for name in files]
    else:
        raise MissingData(f"{what} {uri!r} does not exist")
    try:
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise MissingData(f"the files of {what} {uri!r} do not share one schema: {error}") from error
