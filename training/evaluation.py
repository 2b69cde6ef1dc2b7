"""Metrics that decide between a candidate and the champion, and the decision itself.

The candidate is accepted when it is not worse than the champion by more than the margin, on the
same held-out rows: `candidate >= champion - margin` for a metric where higher is better,
`candidate <= champion + margin` where lower is better.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as sk


@dataclass(frozen=True)
class Metric:
    task: str
    higher_is_better: bool
    score: Callable[[np.ndarray, np.ndarray], float]


METRICS = {
    "accuracy": Metric("classification", True, lambda y, p: sk.accuracy_score(y, p)),
    "f1": Metric("classification", True, lambda y, p: sk.f1_score(y, p, average="macro")),
    "rmse": Metric("regression", False, lambda y, p: sk.root_mean_squared_error(y, p)),
    "mae": Metric("regression", False, lambda y, p: sk.mean_absolute_error(y, p)),
    "r2": Metric("regression", True, lambda y, p: sk.r2_score(y, p)),
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
    return float(METRICS[metric_name].score(np.asarray(actual), np.asarray(predicted).reshape(len(actual), -1)[:, 0]))
