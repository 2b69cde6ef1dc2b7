"""The current window: the last N hours of one model version's rows in the payload store.

The collector partitions rows by their request time into
`<root>/<model>/<version>/date=YYYY-MM-DD/hour=HH/*.parquet`, so the window reads the hour
partitions it overlaps and keeps the rows whose `timestamp` falls inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from monitoring.drift_job.status import MissingData, SchemaMismatch
from monitoring.drift_job.storage import Location

TIMESTAMP_COLUMN = "timestamp"
REQUEST_ID_COLUMN = "request_id"


@dataclass(frozen=True)
class Window:
    """Rows with `start < timestamp <= end` (UTC)."""

    start: datetime
    end: datetime

    @classmethod
    def ending(cls, end: datetime, hours: int) -> "Window":
        return cls(end - timedelta(hours=hours), end)

    def partition_hours(self) -> list[datetime]:
        first = self.start.replace(minute=0, second=0, microsecond=0)
        count = int((self.end - first) / timedelta(hours=1)) + 1
        return [first + timedelta(hours=offset) for offset in range(count)]


def partition_prefix(model: str, version: str, hour: datetime) -> str:
    return f"{model}/{version}/date={hour:%Y-%m-%d}/hour={hour:%H}"


def read_window(payloads: Location, model: str, version: str, window: Window) -> pd.DataFrame:
    """The window's rows (possibly none); MissingData when the store holds nothing for this version."""
    if payloads.kind(f"{model}/{version}") != pafs.FileType.Directory:
        raise MissingData(
            f"the payload store {payloads.describe()} has no data for model {model!r} version {version!r} "
            f"({payloads.describe(f'{model}/{version}')} does not exist): check that the collector lists the "
            "InferenceService and that its logger is enabled"
        )
    files = [name for hour in window.partition_hours() for name in payloads.files(partition_prefix(model, version, hour))]
    tables = [payloads.read_table(name) for name in files]
    if not tables:
        return pd.DataFrame()
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise SchemaMismatch(
            f"the payload files of {model} {version} in the window disagree on column types ({error}); "
            "the model's inputs changed within the window"
        ) from error
    frame = table.to_pandas()
    if TIMESTAMP_COLUMN not in frame.columns:
        raise SchemaMismatch(f"payload files of {model} {version} have no {TIMESTAMP_COLUMN!r} column; they were not written by the collector")
    timestamps = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True)
    inside = (timestamps > pd.Timestamp(window.start)) & (timestamps <= pd.Timestamp(window.end))
    return frame.loc[inside].reset_index(drop=True)
