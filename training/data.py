"""The rows a model trains on: labelled Parquet on the store, and/or the collector's payloads joined
with the labels that arrived for them, read through the drift job's S3-generic storage code.

Payload columns are named as the collector writes them (`input.<feature>`); the model sees the bare
feature names, as the InferenceService received them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from monitoring.drift_job.status import MissingData
from monitoring.drift_job.storage import Location, read_dataset
from training.config import TrainingConfig

INPUT_PREFIX = "input."
REQUEST_ID = "request_id"
PAYLOAD_LABEL = "label"


@dataclass(frozen=True)
class TrainingData:
    features: pd.DataFrame
    target: pd.Series
    sources: dict[str, int]


def _features_of(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """`input.*` columns without their prefix when the rows come from the collector, else every
    column but the target."""
    inputs = [c for c in frame.columns if c.startswith(INPUT_PREFIX)]
    if inputs:
        return frame[inputs].rename(columns=lambda c: c.removeprefix(INPUT_PREFIX))
    return frame.drop(columns=[target])


def _declared_rows(uri: str, label_column: str) -> pd.DataFrame:
    frame = read_dataset(uri, "training data")
    if label_column not in frame.columns:
        raise MissingData(f"training data {uri!r} has no target column {label_column!r} (TRAINING_LABEL_COLUMN); it has {list(frame.columns)}")
    return _features_of(frame, label_column).assign(**{PAYLOAD_LABEL: frame[label_column].to_numpy()})


def _payload_rows(payload_root: str, labels_uri: str, model: str) -> pd.DataFrame:
    """Every collected row of every version of `model` that has a label."""
    store = Location.of(payload_root)
    files = store.files(model)
    if not files:
        raise MissingData(f"the payload store {store.describe(model)} holds no payload files of model {model!r}")
    tables = [store.read_table(name).to_pandas() for name in files]
    payloads = pd.concat(tables, ignore_index=True)
    inputs = [c for c in payloads.columns if c.startswith(INPUT_PREFIX)]
    labels = read_dataset(labels_uri, "labels")
    missing = [c for c in (REQUEST_ID, PAYLOAD_LABEL) if c not in labels.columns]
    if missing:
        raise MissingData(f"labels {labels_uri!r} lack column(s) {missing}; they need {REQUEST_ID!r} and {PAYLOAD_LABEL!r}")
    joined = payloads[[REQUEST_ID, *inputs]].merge(labels[[REQUEST_ID, PAYLOAD_LABEL]].drop_duplicates(REQUEST_ID), on=REQUEST_ID)
    return _features_of(joined.drop(columns=[REQUEST_ID]), PAYLOAD_LABEL).assign(**{PAYLOAD_LABEL: joined[PAYLOAD_LABEL].to_numpy()})


def load_training_data(config: TrainingConfig) -> TrainingData:
    parts: dict[str, pd.DataFrame] = {}
    if config.data:
        parts[config.data] = _declared_rows(config.data, config.label_column)
    if config.payload_root and config.labels:
        parts[f"{config.payload_root}/{config.model} joined with {config.labels}"] = _payload_rows(config.payload_root, config.labels, config.model)
    columns = {source: sorted(frame.columns) for source, frame in parts.items()}
    if len({tuple(c) for c in columns.values()}) > 1:
        raise MissingData(f"the training sources have different feature columns: {columns}")
    rows = pd.concat(parts.values(), ignore_index=True).dropna(subset=[PAYLOAD_LABEL])
    if rows.empty:
        raise MissingData(f"no labelled rows in {', '.join(parts)}")
    return TrainingData(rows.drop(columns=[PAYLOAD_LABEL]), rows[PAYLOAD_LABEL], {source: len(frame) for source, frame in parts.items()})
