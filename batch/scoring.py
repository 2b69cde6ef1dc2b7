"""Score partitions chunk by chunk with a pyfunc model, appending prediction, version and run id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from batch.partitions import SCORED_FILE, Partition, mark_scored
from monitoring.drift_job.status import SchemaMismatch
from monitoring.drift_job.storage import Location

MODEL_VERSION_COLUMN = "model_version"
RUN_ID_COLUMN = "run_id"


@dataclass(frozen=True)
class ScoringModel:
    """A loaded pyfunc model, the version it is and the columns its signature asks for."""

    pyfunc: Any
    version: str
    run_id: str
    input_columns: tuple[str, ...] | None

    @classmethod
    def load(cls, model_uri: str, version: str) -> "ScoringModel":
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(model_uri)
        schema = model.metadata.get_input_schema()
        names = tuple(schema.input_names()) if schema is not None and schema.has_input_names() else None
        return cls(model, version, model.metadata.run_id or "", names)


@dataclass(frozen=True)
class PartitionResult:
    rows: int
    seconds: float


def _prediction_columns(predicted: Any, rows: int, column: str) -> dict[str, pa.Array]:
    if isinstance(predicted, pd.DataFrame):
        return {f"{column}.{name}": pa.array(predicted[name].to_numpy()) for name in predicted.columns}
    values = np.asarray(predicted)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or len(values) != rows:
        raise SchemaMismatch(f"the model returned predictions of shape {values.shape} for {rows} rows; batch scoring writes one value per row")
    return {column: pa.array(values)}


def _chunks(dataset: ds.Dataset, chunk_rows: int) -> Iterator[pa.Table]:
    """Tables of exactly `chunk_rows` rows (the last may be shorter): the reader's batches stop at
    row group and file boundaries, so small row groups are gathered into one model call."""
    pending: list[pa.RecordBatch] = []
    buffered = 0
    for batch in dataset.to_batches(batch_size=chunk_rows):
        pending.append(batch)
        buffered += batch.num_rows
        while buffered >= chunk_rows:
            table = pa.Table.from_batches(pending, schema=dataset.schema)
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            pending, buffered = rest.to_batches(), rest.num_rows
    if buffered:
        yield pa.Table.from_batches(pending, schema=dataset.schema)


def score_partition(model: ScoringModel, source: Location, target: Location, partition: Partition, chunk_rows: int, prediction_column: str) -> PartitionResult:
    """Write `<target>/<partition>/scored.parquet` one row group per chunk, then the marker."""
    dataset = ds.dataset(list(partition.files), filesystem=source.filesystem, format="parquet")
    missing = sorted(set(model.input_columns or ()) - set(dataset.schema.names))
    if missing:
        raise SchemaMismatch(f"partition {partition.name!r} lacks column(s) {missing} the model's signature needs; it has {dataset.schema.names}")
    started, rows, writer = time.perf_counter(), 0, None
    output = target.path(f"{partition.name}/{SCORED_FILE}")
    if isinstance(target.filesystem, pafs.LocalFileSystem):  # only disks need folders
        target.filesystem.create_dir(target.path(partition.name), recursive=True)
    try:
        for chunk in _chunks(dataset, chunk_rows):
            frame = chunk.to_pandas()
            features = frame[list(model.input_columns)] if model.input_columns else frame
            columns = _prediction_columns(model.pyfunc.predict(features), chunk.num_rows, prediction_column)
            columns[MODEL_VERSION_COLUMN] = pa.repeat(pa.scalar(model.version), chunk.num_rows)
            columns[RUN_ID_COLUMN] = pa.repeat(pa.scalar(model.run_id), chunk.num_rows)
            table = chunk
            for name, values in columns.items():
                table = table.append_column(name, values)
            if writer is None:
                writer = pq.ParquetWriter(output, table.schema, filesystem=target.filesystem)
            writer.write_table(table)
            rows += chunk.num_rows
    finally:
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - started
    mark_scored(target, partition, {"modelVersion": model.version, "runId": model.run_id, "rows": rows, "inputs": list(partition.files)})
    return PartitionResult(rows, seconds)
