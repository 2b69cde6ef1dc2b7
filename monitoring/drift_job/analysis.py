"""Drift of one window against the reference, computed by the platform's drift engine.

Feature drift runs on the `input.*` columns (named without the prefix in metrics and reports),
prediction drift on the prediction column (`output.prediction`, the only output, or
`--prediction-column`), and performance drift on window rows whose `request_id` has a label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pandas as pd

from monitoring.drift.engine import compute_drift, performance_drift, prediction_drift
from monitoring.drift.errors import EmptyWindowError, SchemaMismatchError, StatTestColumnTypeError, UnknownStatTestError
from monitoring.drift.report import ColumnDrift, DriftReport
from monitoring.drift_job.config import ConfigError, DriftJobConfig
from monitoring.drift_job.results import ColumnVerdict, DriftResult, Performance, SkippedFeature
from monitoring.drift_job.schema import INPUT_PREFIX, OUTPUT_PREFIX, check_schema
from monitoring.drift_job.status import EmptyWindow, MissingData, SchemaMismatch
from monitoring.drift_job.window import REQUEST_ID_COLUMN, Window

LABEL_COLUMN = "label"
SINGLE_OUTPUT = f"{OUTPUT_PREFIX}prediction"
T = TypeVar("T")


def _bare(column: str) -> str:
    return column.removeprefix(INPUT_PREFIX).removeprefix(OUTPUT_PREFIX)


def _per_column(columns: list[str], configured: Mapping[str, str]) -> dict[str, str]:
    """The `--stattest` or `--column-type` entries (given with or without prefix) of `columns`, keyed by bare name."""
    names = {_bare(c) for c in columns}
    return {_bare(name): value for name, value in configured.items() if _bare(name) in names}


def _check_named_columns(flag: str, configured: Mapping[str, str], columns: list[str]) -> None:
    known = set(columns) | {_bare(c) for c in columns}
    unknown = sorted(name for name in configured if name not in known)
    if unknown:
        raise ConfigError(
            f"{flag} names column(s) {unknown} that the reference sample lacks; its columns are {sorted(_bare(c) for c in columns)}"
        )


def prediction_column(outputs: list[str], configured: str | None) -> str | None:
    """The output column whose drift is prediction drift and which labels are compared with."""
    if configured is not None:
        column = configured if configured.startswith(OUTPUT_PREFIX) else OUTPUT_PREFIX + configured
        if column not in outputs:
            raise ConfigError(f"--prediction-column={configured!r} is not an output column; outputs are {sorted(map(_bare, outputs))}")
        return column
    if SINGLE_OUTPUT in outputs:
        return SINGLE_OUTPUT
    if len(outputs) == 1:
        return outputs[0]
    if outputs:
        raise ConfigError(
            f"the model has several outputs {sorted(map(_bare, outputs))} and none is 'prediction'; choose one with --prediction-column"
        )
    return None


def _feature_drift(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], config: DriftJobConfig) -> DriftReport:
    renamed = {c: _bare(c) for c in features}
    stattests = _per_column(features, config.stattests)
    column_types = _per_column(features, config.column_types)
    thresholds = {name: config.feature_threshold for name in renamed.values()} if config.feature_threshold else None
    # No `columns=`: the engine then leaves out (and lists in `skipped`) columns it cannot compare,
    # e.g. free text, instead of failing the whole run.
    return _engine_call(
        compute_drift,
        reference[features].rename(columns=renamed),
        current[features].rename(columns=renamed),
        column_types=column_types or None,
        stattests=stattests or None,
        thresholds=thresholds,
        drift_share_threshold=config.drift_share_threshold,
        distributions=True,
    )


def _prediction_drift(reference: pd.DataFrame, current: pd.DataFrame, column: str, config: DriftJobConfig) -> ColumnDrift:
    return _engine_call(
        prediction_drift,
        reference,
        current,
        column=column,
        column_type=_per_column([column], config.column_types).get(_bare(column)),
        stattest=_per_column([column], config.stattests).get(_bare(column)),
        distributions=True,
    )


def _engine_call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the engine, turning its input errors into the job's statuses."""
    try:
        return function(*args, **kwargs)
    except SchemaMismatchError as error:
        raise SchemaMismatch(str(error)) from error
    except EmptyWindowError as error:
        raise EmptyWindow(str(error)) from error
    except (UnknownStatTestError, StatTestColumnTypeError) as error:
        raise ConfigError(f"--stattest: {error}") from error


def _verdict(column: ColumnDrift, name: str) -> ColumnVerdict:
    return ColumnVerdict(
        name=name,
        column_type=column.column_type,
        method=column.method,
        score=column.score,
        threshold=column.threshold,
        drifted=column.drifted,
        distribution=column.distribution,
    )


def _performance(
    config: DriftJobConfig, reference: pd.DataFrame, current: pd.DataFrame, labels: pd.DataFrame, predicted: str
) -> tuple[Performance | None, str | None]:
    """(performance, note): no performance when no window row has a label yet (labels lag)."""
    if LABEL_COLUMN not in reference.columns:
        raise MissingData(
            f"--labels is set but the reference sample has no {LABEL_COLUMN!r} column, so there is no reference performance to compare with"
        )
    assert config.task is not None  # load_config requires --task with --labels
    try:
        current_figures = performance_drift(current, labels, config.task, prediction_column=predicted)
    except EmptyWindowError:
        return None, f"no row of the window has a label in {config.labels}; performance not computed"
    # The reference has no request ids: its rows are matched with their own labels by position.
    reference_ids = pd.Series(reference.index.astype(str), index=reference.index, name=REQUEST_ID_COLUMN)
    reference_figures = performance_drift(
        pd.concat([reference_ids, reference[predicted]], axis=1),
        pd.concat([reference_ids, reference[LABEL_COLUMN]], axis=1),
        config.task,
        prediction_column=predicted,
    )
    labelled = current.loc[current[predicted].notna(), REQUEST_ID_COLUMN].isin(labels.loc[labels[LABEL_COLUMN].notna(), REQUEST_ID_COLUMN])
    return Performance(config.task, current_figures, reference_figures, int(labelled.sum())), None


def analyse(
    config: DriftJobConfig, reference: pd.DataFrame, current: pd.DataFrame, labels: pd.DataFrame | None, window: Window
) -> DriftResult:
    kinds = check_schema(reference, current)
    features = [c for c in kinds if c.startswith(INPUT_PREFIX)]
    outputs = [c for c in kinds if c.startswith(OUTPUT_PREFIX)]
    _check_named_columns("--stattest", config.stattests, features + outputs)
    _check_named_columns("--column-type", config.column_types, features + outputs)
    predicted = prediction_column(outputs, config.prediction_column)
    feature_report = _feature_drift(reference, current, features, config)
    prediction = _verdict(_prediction_drift(reference, current, predicted, config), _bare(predicted)) if predicted else None
    notes = [f"feature {s.column} not compared: {s.reason}" for s in feature_report.skipped]
    if predicted is None:
        notes.append("the model has no output columns; prediction drift not computed")
    performance = None
    if labels is not None:
        if predicted is None:
            raise SchemaMismatch("--labels is set but the payloads have no output column to compare the labels with")
        performance, note = _performance(config, reference, current, labels, predicted)
        notes.extend([note] if note else [])
    return DriftResult(
        model=config.model,
        version=config.model_version,
        window=window,
        reference_rows=len(reference),
        current_rows=len(current),
        features=tuple(_verdict(column, column.column) for column in feature_report.columns),
        drift_share=float(feature_report.drift_share),
        dataset_drifted=bool(feature_report.dataset_drifted),
        prediction=prediction,
        performance=performance,
        notes=tuple(notes),
        skipped=tuple(SkippedFeature(s.column, s.reason, s.code) for s in feature_report.skipped),
    )
