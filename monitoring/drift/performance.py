"""Model performance once ground truth arrives: predictions joined with labels on request id.

Comparing the figures of the current window with those of the reference data shows concept
drift, which feature drift alone cannot: the inputs may look the same while their meaning moved.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from monitoring.drift.errors import DriftInputError, EmptyWindowError

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")
REQUEST_ID = "request_id"
LABEL = "label"


def performance_drift(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    task: Task,
    *,
    prediction_column: str = "output.prediction",
) -> dict[str, float]:
    """Accuracy and macro F1 (classification) or MAE and RMSE (regression) of the predictions that
    have a label, matched on ``request_id``; rows whose prediction or label is missing are left out.

    A request id recorded twice among predictions counts once (delivery is at least once, so the
    same record can arrive twice); twice among labels is an error, as the truth is ambiguous.
    """
    if task not in TASKS:
        raise DriftInputError(f"task must be one of {list(TASKS)}; got '{task}'")
    _require_columns(predictions, "predictions", (REQUEST_ID, prediction_column))
    _require_columns(labels, "labels", (REQUEST_ID, LABEL))
    duplicated = labels[REQUEST_ID][labels[REQUEST_ID].duplicated()]
    if not duplicated.empty:
        raise DriftInputError(
            f"labels hold {duplicated.size} repeated request_id values (e.g. {duplicated.iloc[0]!r}); "
            "keep one label per request"
        )
    joined = (
        predictions[[REQUEST_ID, prediction_column]]
        .drop_duplicates(subset=REQUEST_ID)
        .merge(labels[[REQUEST_ID, LABEL]], on=REQUEST_ID, how="inner")
        .dropna(subset=[prediction_column, LABEL])
    )
    if joined.empty:
        raise EmptyWindowError("labelled predictions")
    predicted, actual = joined[prediction_column], joined[LABEL]
    if task == "regression":
        return _regression_metrics(predicted, actual)
    return _classification_metrics(predicted, actual)


def _require_columns(frame: pd.DataFrame, name: str, required: tuple[str, ...]) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DriftInputError(f"{name} lack columns {missing}; they have {list(map(str, frame.columns))}")


def _regression_metrics(predicted: pd.Series, actual: pd.Series) -> dict[str, float]:
    for name, values in (("predictions", predicted), ("labels", actual)):
        if not ptypes.is_numeric_dtype(values.dtype):
            raise DriftInputError(f"regression needs numeric {name}; got dtype {values.dtype}")
    error = predicted.to_numpy(dtype=np.float64) - actual.to_numpy(dtype=np.float64)
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}


def _classification_metrics(predicted: pd.Series, actual: pd.Series) -> dict[str, float]:
    if not (ptypes.is_numeric_dtype(predicted.dtype) and ptypes.is_numeric_dtype(actual.dtype)):
        # A label read from CSV as 1 and a prediction stored as "1" name the same class.
        predicted, actual = predicted.astype(str), actual.astype(str)
    predicted_values, actual_values = predicted.to_numpy(), actual.to_numpy()
    accuracy = float(np.mean(predicted_values == actual_values))
    # Macro F1 over every class seen in labels or predictions; a class never predicted correctly
    # scores 0 (scikit-learn's default for an undefined F1).
    scores = []
    for label in pd.unique(np.concatenate([actual_values, predicted_values])):
        true_positive = np.count_nonzero((predicted_values == label) & (actual_values == label))
        predicted_positive = np.count_nonzero(predicted_values == label)
        actual_positive = np.count_nonzero(actual_values == label)
        scores.append(2 * true_positive / (predicted_positive + actual_positive))
    return {"accuracy": accuracy, "f1": float(np.mean(scores))}
