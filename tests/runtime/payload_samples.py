"""Payload data for the drift job tests, in the payload collector's layout and column names.

A fraud-like model with a numeric feature (amount), an integer feature (age), a categorical
feature (country), one prediction and a label. `shifted=True` moves amount and country far enough
that every default drift test flags them, while age keeps its distribution.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

COUNTRIES = np.array(["DE", "FR", "US"])


def _features(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.normal(140.0 if shifted else 100.0, 20.0, rows)
    country_weights = [0.1, 0.1, 0.8] if shifted else [0.5, 0.3, 0.2]
    return pd.DataFrame(
        {
            "input.amount": amount,
            "input.age": rng.integers(20, 70, rows).astype(float),
            "input.country": rng.choice(COUNTRIES, rows, p=country_weights),
            "output.prediction": (amount > 110.0).astype(float),
        }
    )


def reference_frame(rows: int = 600, seed: int = 1) -> pd.DataFrame:
    """Training-time sample: model columns plus a `label` that agrees with the prediction 90 % of the time."""
    frame = _features(rows, seed, shifted=False)
    frame["input.age"] = frame["input.age"].astype(int)
    flip = np.random.default_rng(seed + 100).random(rows) < 0.1
    frame["label"] = np.where(flip, 1.0 - frame["output.prediction"], frame["output.prediction"])
    return frame


def window_frame(
    rows: int, end: datetime, seed: int = 2, shifted: bool = False, model: str = "fraud", version: str = "v1", span: timedelta = timedelta(minutes=50)
) -> pd.DataFrame:
    """Rows as the collector stores them, timestamps spread over `span` before `end`."""
    frame = _features(rows, seed, shifted)
    offsets = np.linspace(0, span.total_seconds(), rows)
    frame.insert(0, "version", version)
    frame.insert(0, "model", model)
    timestamps = pd.Series([pd.Timestamp(end) - pd.Timedelta(seconds=float(s)) for s in offsets])
    # The collector writes microsecond UTC timestamps.
    frame.insert(0, "timestamp", timestamps.astype("datetime64[us, UTC]"))
    frame.insert(0, "request_id", [f"req-{seed}-{i}" for i in range(rows)])
    return frame


def labels_for(window: pd.DataFrame, accuracy: float, seed: int = 3) -> pd.DataFrame:
    """Labels that agree with the window's predictions for a fraction `accuracy` of the rows."""
    wrong = np.random.default_rng(seed).random(len(window)) >= accuracy
    prediction = window["output.prediction"].to_numpy()
    return pd.DataFrame({"request_id": window["request_id"], "label": np.where(wrong, 1.0 - prediction, prediction)})


def write_partitions(root: Path, frame: pd.DataFrame) -> list[Path]:
    """Write `frame` into `<root>/<model>/<version>/date=YYYY-MM-DD/hour=HH/<uuid>.parquet`, one file per hour."""
    written = []
    timestamps = pd.to_datetime(frame["timestamp"], utc=True)
    for hour, rows in frame.groupby(timestamps.dt.floor("h")):
        model, version = rows["model"].iloc[0], rows["version"].iloc[0]
        folder = root / model / version / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4()}.parquet"
        rows.to_parquet(path, index=False)
        written.append(path)
    return written
