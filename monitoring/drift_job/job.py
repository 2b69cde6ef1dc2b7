"""One drift run, from settings to a `DriftResult` and its reports (no metrics, no webhook here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from monitoring.drift_job.analysis import LABEL_COLUMN, analyse
from monitoring.drift_job.config import DriftJobConfig
from monitoring.drift_job.reference import load_reference
from monitoring.drift_job.report import WrittenReport, write_report
from monitoring.drift_job.results import DriftResult
from monitoring.drift_job.status import EmptyWindow, MissingData
from monitoring.drift_job.storage import Location, read_dataset
from monitoring.drift_job.window import REQUEST_ID_COLUMN, Window, read_window


@dataclass(frozen=True)
class CompletedRun:
    result: DriftResult
    report: WrittenReport


def load_labels(uri: str) -> pd.DataFrame:
    labels = read_dataset(uri, "labels")
    missing = [c for c in (REQUEST_ID_COLUMN, LABEL_COLUMN) if c not in labels.columns]
    if missing:
        raise MissingData(f"labels {uri!r} lack column(s) {missing}; they need {REQUEST_ID_COLUMN!r} and {LABEL_COLUMN!r}")
    return labels[[REQUEST_ID_COLUMN, LABEL_COLUMN]]


def run_drift(config: DriftJobConfig, now: datetime) -> CompletedRun:
    """Read the reference, labels and window, compute drift and write the reports."""
    reference = load_reference(config.reference)
    labels = load_labels(config.labels) if config.labels else None
    window = Window.ending(now, config.window_hours)
    current = read_window(Location.of(config.payload_root), config.model, config.model_version, window)
    if len(current) < config.min_rows:
        raise EmptyWindow(
            f"{len(current)} rows of {config.model} {config.model_version} between {window.start:%Y-%m-%dT%H:%M}Z and "
            f"{window.end:%Y-%m-%dT%H:%M}Z, fewer than --min-rows={config.min_rows}: no traffic, or the collector is not writing"
        )
    result = analyse(config, reference, current, labels, window)
    return CompletedRun(result, write_report(config.reports_root, result, now))
