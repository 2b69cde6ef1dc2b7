"""Drift of a current window against a reference sample, column by column, like Evidently's
DataDriftPreset: each column gets Evidently's default stattest (or the one named for it), NaN and
infinite values are dropped per column, and the dataset drifts when the share of drifted columns
reaches ``drift_share_threshold``."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from monitoring.drift.columns import COLUMN_TYPES, NUMERIC, TEXT, ColumnType, infer_column_type, value_kind
from monitoring.drift.distributions import Distribution, category_bars, histogram, text_lengths
from monitoring.drift.errors import DriftInputError, EmptyWindowError, SchemaMismatchError
from monitoring.drift.performance import performance_drift
from monitoring.drift.report import ColumnDrift, DriftReport, SkippedColumn
from monitoring.drift.selection import FEW_NUMERIC_MAX_VALUES, default_stattest, named_stattest

# performance_drift lives in its own module; the drift job imports all three from the engine.
__all__ = ["compute_drift", "performance_drift", "prediction_drift"]

DEFAULT_PREDICTION_COLUMN = "output.prediction"
# Columns are compared in parallel: numpy's sorts and reductions release the GIL. More than a few
# workers only multiplies the memory held by columns in flight.
MAX_WORKERS = 4
# The default choice of test only tells apart up to this many distinct values (see selection.py).
_DISTINCT_VALUES_CAP = FEW_NUMERIC_MAX_VALUES + 1


@dataclass(frozen=True)
class _ColumnPlan:
    column: str
    column_type: ColumnType
    stattest: str | None
    threshold: float | None


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    column_types: Mapping[str, str] | None = None,
    stattests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share_threshold: float = 0.5,
    distributions: bool = False,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    ``columns`` limits the comparison (default: every column, and then both datasets must have the
    same columns). ``column_types`` ('num', 'cat' or 'text'), ``stattests`` (registered names)
    and ``thresholds`` override, per column, the inferred type, Evidently's default test and that
    test's default threshold. ``distributions`` adds to each column the reference and current
    shares a report draws. Without ``columns``, columns whose type cannot be inferred (datetime,
    unsigned or nullable dtypes, see columns.py) are listed in ``DriftReport.skipped``; a column
    named in ``columns`` or given a stattest must be comparable (a threshold alone applies only if
    the column is compared).

    Raises EmptyWindowError when a dataset (or a compared column) has no values,
    SchemaMismatchError when the datasets disagree on columns or on a column's kind of values, and
    DriftInputError for options that do not fit the data.
    """
    if not 0 < drift_share_threshold <= 1:
        raise DriftInputError(f"drift_share_threshold must be in (0, 1]; got {drift_share_threshold}")
    for dataset, frame in (("current", current), ("reference", reference)):
        if len(frame) == 0:
            raise EmptyWindowError(dataset)
    selected = _compared_columns(reference, current, columns)
    plans, skipped = _plan_columns(
        current, selected, explicit=columns is not None,
        column_types=column_types or {}, stattests=stattests or {}, thresholds=thresholds or {},
    )
    if not plans:
        raise DriftInputError(f"no column can be compared: {[(s.column, s.reason) for s in skipped]}")
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, os.cpu_count() or 1, len(plans))) as pool:
        results = tuple(
            pool.map(lambda plan: _column_drift(plan, reference[plan.column], current[plan.column], distributions), plans)
        )
    return DriftReport(columns=results, drift_share_threshold=drift_share_threshold, skipped=tuple(skipped))


def prediction_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    column: str = DEFAULT_PREDICTION_COLUMN,
    column_type: str | None = None,
    stattest: str | None = None,
    threshold: float | None = None,
    distributions: bool = False,
) -> ColumnDrift:
    """Drift of the model's output column, chosen and tested like any feature column."""
    report = compute_drift(
        reference,
        current,
        columns=[column],
        column_types=None if column_type is None else {column: column_type},
        stattests=None if stattest is None else {column: stattest},
        thresholds=None if threshold is None else {column: threshold},
        distributions=distributions,
    )
    return report.columns[0]


def _compared_columns(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None) -> list[str]:
    """The columns to compare, once the datasets are known to agree on them."""
    in_reference, in_current = set(reference.columns), set(current.columns)
    if columns is None:
        added = [column for column in current.columns if column not in in_reference]
        removed = [column for column in reference.columns if column not in in_current]
        selected = [column for column in current.columns if column in in_reference]
    else:
        if not columns:
            raise DriftInputError("columns must name at least one column when given")
        nowhere = [column for column in columns if column not in in_reference and column not in in_current]
        if nowhere:
            raise DriftInputError(
                f"columns {nowhere} are in neither dataset; reference columns: {list(reference.columns)}"
            )
        added = [column for column in columns if column not in in_reference]
        removed = [column for column in columns if column not in in_current]
        selected = list(dict.fromkeys(columns))
    retyped = {
        column: (value_kind(reference[column]), value_kind(current[column]))
        for column in selected
        if column in in_reference and column in in_current
        and value_kind(reference[column]) != value_kind(current[column])
    }
    if added or removed or retyped:
        raise SchemaMismatchError(added=added, removed=removed, retyped=retyped)
    return selected


def _plan_columns(
    current: pd.DataFrame,
    selected: list[str],
    *,
    explicit: bool,
    column_types: Mapping[str, str],
    stattests: Mapping[str, str],
    thresholds: Mapping[str, float],
) -> tuple[list[_ColumnPlan], list[SkippedColumn]]:
    for option, values in (("column_types", column_types), ("stattests", stattests), ("thresholds", thresholds)):
        unknown = sorted(set(values) - set(selected))
        if unknown:
            raise DriftInputError(f"{option} names columns that are not compared: {unknown}; compared: {selected}")
    plans, skipped = [], []
    for column in selected:
        declared = column_types.get(column)
        if declared is not None and declared not in COLUMN_TYPES:
            raise DriftInputError(f"column_types['{column}'] is '{declared}'; allowed: {list(COLUMN_TYPES)}")
        threshold = thresholds.get(column)
        if threshold is not None and not math.isfinite(threshold):
            raise DriftInputError(f"thresholds['{column}'] must be a finite number; got {threshold}")
        inferred = infer_column_type(current[column]) if declared is None else None
        column_type = declared if inferred is None else inferred.column_type
        if column_type is None:
            if explicit or column in stattests:
                raise DriftInputError(
                    f"column '{column}' cannot be compared: {inferred.reason}; "
                    f"declare its type in column_types as one of {list(COLUMN_TYPES)}"
                )
            skipped.append(SkippedColumn(column, inferred.reason, inferred.code))
            continue
        plans.append(_ColumnPlan(column, column_type, stattests.get(column), threshold))
    return plans, skipped


def _column_drift(plan: _ColumnPlan, reference: pd.Series, current: pd.Series, distributions: bool) -> ColumnDrift:
    distribution: Distribution | None = None
    if plan.column_type == NUMERIC:
        reference_values = _sorted_numeric_values(reference, plan.column, "reference")
        current_values = _sorted_numeric_values(current, plan.column, "current")
        distinct = _distinct_values_capped(reference_values, current_values)
        if distributions:
            distribution = histogram(reference_values, current_values)
    elif plan.column_type == TEXT:
        reference_values = _texts(reference, plan.column, "reference")
        current_values = _texts(current, plan.column, "current")
        distinct = 0  # the text tests do not depend on it
        if distributions:
            distribution = text_lengths(reference_values, current_values)
    else:
        reference_values, current_values, categories = _category_codes(reference, current, plan.column)
        distinct = len(categories)
        if distributions:
            distribution = category_bars(reference_values, current_values, list(categories))
    if plan.stattest is None:
        choice = default_stattest(plan.column_type, reference_values.size, distinct)
    else:
        choice = named_stattest(plan.stattest, plan.column_type)
    threshold = choice.stattest.default_threshold if plan.threshold is None else plan.threshold
    score, drifted = choice.function(reference_values, current_values, threshold)
    return ColumnDrift(
        column=plan.column,
        column_type=plan.column_type,
        method=choice.stattest.name,
        score=float(score),
        threshold=float(threshold),
        drifted=bool(drifted),
        reference_rows=int(reference_values.size),
        current_rows=int(current_values.size),
        distribution=distribution,
    )


def _sorted_numeric_values(values: pd.Series, column: str, dataset: str) -> np.ndarray:
    """Finite values, sorted once here and reused by whichever test runs.

    Integers stay integers: as float64, integers beyond 2**53 would merge with their neighbours,
    change the count of distinct values and so the test chosen (Evidently counts them exactly).
    """
    if not ptypes.is_numeric_dtype(values.dtype):
        raise DriftInputError(
            f"column '{column}' is compared as numeric but its {dataset} values are of dtype {values.dtype}; "
            "declare it 'cat' in column_types or fix the data"
        )
    if ptypes.is_integer_dtype(values.dtype) and not ptypes.is_bool_dtype(values.dtype):
        present = values.dropna()
        if present.empty:
            raise EmptyWindowError(dataset, column)
        return np.sort(present.to_numpy(dtype=getattr(values.dtype, "numpy_dtype", values.dtype)))
    array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(array)
    if not finite.all():
        array = array[finite]
    if array.size == 0:
        raise EmptyWindowError(dataset, column)
    return np.sort(array)


def _texts(values: pd.Series, column: str, dataset: str) -> np.ndarray:
    present = values.dropna()
    if present.empty:
        raise EmptyWindowError(dataset, column)
    return present.astype(str).to_numpy(dtype=object)


def _distinct_values_capped(reference: np.ndarray, current: np.ndarray) -> int:
    """Distinct values of both sorted samples together, counted up to the cap the default choice needs."""
    uniques = []
    for values in (reference, current):
        is_new = np.empty(values.size, dtype=bool)
        is_new[0] = True
        np.not_equal(values[1:], values[:-1], out=is_new[1:])
        if np.count_nonzero(is_new) >= _DISTINCT_VALUES_CAP:
            return _DISTINCT_VALUES_CAP
        uniques.append(values[is_new])
    return min(np.union1d(*uniques).size, _DISTINCT_VALUES_CAP)


def _category_codes(reference: pd.Series, current: pd.Series, column: str) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Each non-null value as the position of its category among those of both datasets, sorted
    when the categories can be ordered (the z-test contrasts the smallest one with the rest)."""
    reference_codes, reference_categories = pd.factorize(reference)
    current_codes, current_categories = pd.factorize(current)
    categories = pd.Index(np.asarray(reference_categories, dtype=object)).append(
        pd.Index(np.asarray(current_categories, dtype=object))
    ).unique()
    try:
        categories = categories.sort_values()
    except TypeError:
        # Categories of mixed types (e.g. 1 and "a") have no order; only the z-test's pick of
        # the contrasted category depends on it.
        pass
    coded = []
    for dataset, codes, own_categories in (
        ("reference", reference_codes, reference_categories),
        ("current", current_codes, current_categories),
    ):
        present = codes[codes >= 0]
        if present.size == 0:
            raise EmptyWindowError(dataset, column)
        positions = categories.get_indexer(pd.Index(np.asarray(own_categories, dtype=object)))
        coded.append(positions[present])
    return coded[0], coded[1], categories
