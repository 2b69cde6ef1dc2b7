"""Drift engine: Evidently-compatible drift statistics over pandas data, vectorised with numpy."""

from monitoring.drift.engine import compute_drift, prediction_drift
from monitoring.drift.errors import (
    DriftInputError,
    EmptyWindowError,
    SchemaMismatchError,
    StatTestColumnTypeError,
    UnknownStatTestError,
)
from monitoring.drift.performance import performance_drift
from monitoring.drift.report import ColumnDrift, DriftReport, SkippedColumn

__all__ = [
    "ColumnDrift",
    "DriftInputError",
    "DriftReport",
    "EmptyWindowError",
    "SchemaMismatchError",
    "SkippedColumn",
    "StatTestColumnTypeError",
    "UnknownStatTestError",
    "compute_drift",
    "performance_drift",
    "prediction_drift",
]
