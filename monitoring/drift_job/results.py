"""What one successful drift run found, in the shapes the metrics, reports and webhook need."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from monitoring.drift.distributions import Distribution
from monitoring.drift_job.window import Window


@dataclass(frozen=True)
class ColumnVerdict:
    """The drift test of one column: `name` is the feature (or output) name without its prefix."""

    name: str
    column_type: str
    method: str
    score: float
    threshold: float
    drifted: bool
    distribution: Distribution | None = None


@dataclass(frozen=True)
class SkippedFeature:
    """A feature left out of the comparison: `reason` in words, `code` as the metric label."""

    name: str
    reason: str
    code: str


@dataclass(frozen=True)
class Performance:
    """Model quality on labelled rows of the window and on the labelled reference sample."""

    task: str
    current: dict[str, float]
    reference: dict[str, float]
    labelled_rows: int


@dataclass(frozen=True)
class DriftResult:
    model: str
    version: str
    window: Window
    reference_rows: int
    current_rows: int
    features: tuple[ColumnVerdict, ...]
    drift_share: float
    dataset_drifted: bool
    prediction: ColumnVerdict | None
    performance: Performance | None
    notes: tuple[str, ...] = ()
    skipped: tuple[SkippedFeature, ...] = ()

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def any_drift(self) -> bool:
        return bool(self.drifted_features) or bool(self.prediction and self.prediction.drifted)

    def summary(self) -> dict[str, Any]:
        """The verdicts in a few fields (webhook payload, report header)."""
        return {
            "datasetDrifted": self.dataset_drifted,
            "driftShare": self.drift_share,
            "driftedFeatures": self.drifted_features,
            "skippedFeatures": {skipped.name: skipped.code for skipped in self.skipped},
            "predictionDrifted": bool(self.prediction and self.prediction.drifted),
            "performance": self.performance.current if self.performance else None,
            "performanceReference": self.performance.reference if self.performance else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "window": {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
            "rows": {"reference": self.reference_rows, "current": self.current_rows},
            "summary": self.summary(),
            "features": [_json_ready(f) for f in self.features],
            "skipped": [asdict(skipped) for skipped in self.skipped],
            "prediction": _json_ready(self.prediction) if self.prediction else None,
            "performance": asdict(self.performance) if self.performance else None,
            "notes": list(self.notes),
        }


def _json_ready(verdict: ColumnVerdict) -> dict[str, Any]:
    # JSON has no NaN: a test that cannot score (e.g. one category on both sides) reports null.
    # The distribution is drawn in the HTML report; the JSON keeps the verdicts.
    fields = {key: value for key, value in asdict(verdict).items() if key != "distribution"}
    return {**fields, "score": verdict.score if math.isfinite(verdict.score) else None}
