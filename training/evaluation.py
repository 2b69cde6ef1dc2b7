"""Metrics that decide between a candidate and the champion, and the decision itself.

The candidate is accepted when it is not worse than the champion by more than the margin, on the
same held-out rows: `candidate >= champion - margin` for a metric where higher is better,
`candidate <= champion + margin` where lower is better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Metric:
    task: str
    higher_is_better: bool
    # scikit-learn's function of that name (imported when scoring, so settings load without it).
    function: str
    options: dict[str, Any] = field(default_factory=dict)


METRICS = {
    "accuracy": Metric("classification", True, "accuracy_score"),
    "f1": Metric("classification", True, "f1_score", {"average": "macro"}),
    "rmse": Metric("regression", False, "root_mean_squared_error"),
    "mae": Metric("regression", False, "mean_absolute_error"),
    "r2": Metric("regression", True, "r2_score"),
}


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    candidate: float
    champion: float | None
    reason: str


def decide(metric_name: str, margin: float, candidate: float, champion: float | None) -> Verdict:
    if champion is None:
        return Verdict(True, candidate, None, f"no champion to compare with; candidate {metric_name}={candidate:.4f}")
    metric = METRICS[metric_name]
    worse_by = (champion - candidate) if metric.higher_is_better else (candidate - champion)
    comparison = f"candidate {metric_name}={candidate:.4f}, champion {metric_name}={champion:.4f}, margin {margin:g}"
    if worse_by > margin:
        return Verdict(False, candidate, champion, f"candidate is worse than the champion by {worse_by:.4f} > margin: {comparison}")
    return Verdict(True, candidate, champion, f"candidate is not worse than the champion beyond the margin: {comparison}")


def score(metric_name: str, actual: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn import metrics

    metric = METRICS[metric_name]
    values = np.asarray(predicted).reshape(len(actual), -1)[:, 0]
    return float(getattr(metrics, metric.function)(np.asarray(actual), values, **metric.options))
