"""Encode buffered rows as Parquet files laid out `<model>/<version>/date=YYYY-MM-DD/hour=HH/<uuid>.parquet`.

Rows are partitioned by their own (request) time, so a batch spanning an hour boundary becomes
one file per hour. Numbers are stored as float64 and anything that is not a uniform scalar
column (mixed types, nested values of differing shapes) as JSON text, so files written at
different times share one schema and the drift job never mistakes a batch of whole numbers for a
retyped column.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from serving.collector.correlator import StoreRow

KEY_COLUMNS = ("request_id", "inference_id", "timestamp", "model", "version")
_KEY_TYPES = {
    "request_id": pa.string(),
    "inference_id": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "model": pa.string(),
    "version": pa.string(),
}


def partition_prefix(model: str, version: str, moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return f"{model}/{version}/date={moment:%Y-%m-%d}/hour={moment:%H}"


def new_object_key(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4()}.parquet"


def encode_rows(rows: Sequence[StoreRow]) -> bytes:
    names = [*KEY_COLUMNS, *_ordered_value_columns(rows)]
    arrays = [
        pa.array([row[name] for row in rows], type=_KEY_TYPES[name]) if name in _KEY_TYPES else _column([row.get(name) for row in rows])
        for name in names
    ]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=names), sink, compression="zstd")
    return sink.getvalue()


def _ordered_value_columns(rows: Sequence[StoreRow]) -> list[str]:
    """Inputs before outputs, each in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update((name, None) for name in row if name not in KEY_COLUMNS)
    return sorted(seen, key=lambda name: not name.startswith("input."))


def _column(values: list[Any]) -> pa.Array:
    present = [v for v in values if v is not None]
    if not present:
        return pa.nulls(len(values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        with contextlib.suppress(OverflowError):
            return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    elif all(isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.bool_())
    elif all(isinstance(v, str) for v in present):
        return pa.array(values, type=pa.string())
    else:
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            return pa.array(values)
    return pa.array([None if v is None else json.dumps(v) for v in values], type=pa.string())
