"""The result of a drift comparison: one verdict per column and the dataset-level verdict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from monitoring.drift.columns import ColumnType
from monitoring.drift.distributions import Distribution


@dataclass(frozen=True)
class ColumnDrift:
    """How one column's current values compare with its reference values.

    ``reference_rows`` and ``current_rows`` count the values compared, after NaN and infinite
    values are dropped. ``distribution`` (when asked for) is what a report draws.
    """

    column: str
    column_type: ColumnType
    method: str
    score: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    distribution: Distribution | None = None


@dataclass(frozen=True)
class SkippedColumn:
    """A column left out of the comparison because its type could not be inferred: ``reason`` says
    why in words, ``code`` in a short label (``datetime``, ``unsigned_integer``, ...)."""

    column: str
    reason: str
    code: str = ""


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift and the dataset verdict: drifted when the share of drifted columns reaches
    ``drift_share_threshold`` (Evidently's DatasetDriftMetric)."""

    columns: tuple[ColumnDrift, ...]
    drift_share_threshold: float
    skipped: tuple[SkippedColumn, ...] = ()

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(column.column for column in self.columns if column.drifted)

    @property
    def drift_share(self) -> float:
        return len(self.drifted_columns) / len(self.columns)

    @property
    def dataset_drifted(self) -> bool:
        return self.drift_share >= self.drift_share_threshold

    def column(self, name: str) -> ColumnDrift:
        """The drift of the column called ``name`` (KeyError naming the compared columns otherwise)."""
        for column in self.columns:
            if column.column == name:
                return column
        raise KeyError(f"column '{name}' was not compared; compared columns: {[c.column for c in self.columns]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every column's result and the dataset verdict."""
        return {
            "columns": [_json_ready(column) for column in self.columns],
            "skipped": [asdict(column) for column in self.skipped],
            "number_of_columns": len(self.columns),
            "number_of_drifted_columns": len(self.drifted_columns),
            "drift_share": self.drift_share,
            "drift_share_threshold": self.drift_share_threshold,
            "dataset_drifted": self.dataset_drifted,
        }


def _json_ready(column: ColumnDrift) -> dict[str, Any]:
    # JSON has no NaN: a test that cannot score (e.g. chi-squared over a single category) gives null.
    # The distribution is for pictures; the JSON keeps the verdicts.
    fields = {key: value for key, value in asdict(column).items() if key != "distribution"}
    return {**fields, "score": column.score if math.isfinite(column.score) else None}
