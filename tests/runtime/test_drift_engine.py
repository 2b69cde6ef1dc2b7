"""The drift engine on DataFrames: Evidently's default choice of test, column type inference,
NaN handling, per-column overrides, the dataset verdict, the errors for data that cannot be
compared, and prediction and performance drift."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from monitoring.drift import (
    DriftInputError,
    EmptyWindowError,
    SchemaMismatchError,
    StatTestColumnTypeError,
    UnknownStatTestError,
    compute_drift,
    performance_drift,
    prediction_drift,
)
from monitoring.drift.columns import infer_column_type
from monitoring.drift.selection import default_stattest_name
from monitoring.drift.stattests import chi_squared, jensen_shannon_numeric, kolmogorov_smirnov, wasserstein_normed


def normal(rows: int, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, rows)


def method_for(values: np.ndarray | list, current: np.ndarray | list | None = None, **options) -> str:
    """The stattest the engine picks for one column."""
    reference = pd.DataFrame({"x": values})
    current_frame = pd.DataFrame({"x": values if current is None else current})
    return compute_drift(reference, current_frame, **options).column("x").method


# --- Evidently's default choice ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column_type", "reference_rows", "distinct_values", "expected"),
    [
        ("num", 1000, 2, "z"),
        ("num", 1000, 3, "chisquare"),
        ("num", 1000, 5, "chisquare"),
        ("num", 1000, 6, "ks"),
        ("cat", 1000, 2, "z"),
        ("cat", 1000, 3, "chisquare"),
        ("cat", 1000, 500, "chisquare"),
        ("num", 1001, 2, "jensenshannon"),
        ("num", 1001, 5, "jensenshannon"),
        ("num", 1001, 6, "wasserstein"),
        ("cat", 1001, 2, "jensenshannon"),
        ("cat", 1001, 500, "jensenshannon"),
    ],
)
def test_default_stattest_follows_evidentlys_rule(
    column_type: str, reference_rows: int, distinct_values: int, expected: str
) -> None:
    """Reference size (<= 1000 rows or more), column type and distinct values pick the test."""
    assert default_stattest_name(column_type, reference_rows, distinct_values) == expected


def test_reference_size_is_counted_after_nan_are_dropped() -> None:
    """1001 reference rows with one NaN are 1000 values: the small-data test (K-S) applies."""
    values = normal(1001)
    assert method_for(values) == "wasserstein"
    values[0] = np.nan
    assert method_for(values) == "ks"


def test_distinct_values_are_counted_over_both_datasets() -> None:
    """Reference with 2 values and current with a third: 3 distinct values, chi-squared, not z."""
    assert method_for([0.0, 1.0] * 50, [0.0, 1.0] * 50) == "z"
    assert method_for([0.0, 1.0] * 50, [0.0, 1.0, 2.0] * 30) == "chisquare"


def test_few_valued_numeric_columns_run_the_value_count_test() -> None:
    """A small numeric column with 3 values gets chi-squared over its values, like a category."""
    reference, current = np.array([1.0, 2.0, 3.0] * 40), np.array([1.0] * 60 + [2.0, 3.0] * 30)
    drift = compute_drift(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current})).column("x")
    assert (drift.method, drift.column_type) == ("chisquare", "num")
    assert drift.score == pytest.approx(chi_squared(reference, current, 0.05)[0], abs=1e-12)


def test_large_few_valued_numeric_columns_use_jensen_shannon() -> None:
    """Above 1000 reference rows, a numeric column with at most 5 values gets Jensen-Shannon."""
    rng = np.random.default_rng(1)
    reference, current = rng.integers(0, 5, 2000).astype(float), rng.integers(0, 4, 2000).astype(float)
    drift = compute_drift(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current})).column("x")
    assert drift.method == "jensenshannon"
    assert drift.score == pytest.approx(jensen_shannon_numeric(reference, current, 0.1)[0], abs=1e-12)


# --- column types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.Series([0.5, 1.5, 0.5]), "num"),
        (pd.Series(list(range(10)) * 3), "cat"),
        (pd.Series(list(range(11)) * 3), "num"),
        (pd.Series([True, False, True]), "cat"),
        (pd.Series(["a", "b"] * 5, dtype="category"), "cat"),
        (pd.Series(["a", "b", None, "a"] * 3, dtype=object), "cat"),
        (pd.Series(["a", "b", "a"] * 3, dtype="string"), "cat"),
        (pd.Series([f"id-{i}" for i in range(10)]), "text"),
    ],
    ids=["float", "int-10-values", "int-11-values", "bool", "category", "strings", "string-dtype", "text"],
)
def test_column_type_is_inferred_like_evidently(values: pd.Series, expected: str) -> None:
    """Floats are numeric, integers with at most 10 values and strings with repeats categorical."""
    assert infer_column_type(values).column_type == expected


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (pd.Series(pd.date_range("2024-01-01", periods=4, freq="h")), "datetime"),
        (pd.Series([None, None], dtype=object), "no values"),
        (pd.Series([1, 2, None] * 5, dtype="Int64"), "nullable dtype Int64"),
    ],
    ids=["datetime", "all-null", "nullable-int"],
)
def test_columns_of_other_types_are_not_inferred(values: pd.Series, reason: str) -> None:
    """Datetimes, empty object columns and dtypes Evidently's name match misses get no type."""
    inferred = infer_column_type(values)
    assert inferred.column_type is None and reason in inferred.reason


def test_uninferable_columns_are_skipped_with_their_reason() -> None:
    """Without an explicit column list, a timestamp column is left out and reported, not compared."""
    times = pd.date_range("2024-01-01", periods=20, freq="h")
    reference = pd.DataFrame({"seen_at": times, "x": normal(20)})
    current = pd.DataFrame({"seen_at": times, "x": normal(20, seed=1)})
    # A threshold for every column (as a job configured once would give) does not force a comparison.
    report = compute_drift(reference, current, thresholds={"seen_at": 0.2, "x": 0.2})
    assert [column.column for column in report.columns] == ["x"]
    assert [(skipped.column, "datetime" in skipped.reason) for skipped in report.skipped] == [("seen_at", True)]


def test_column_type_is_inferred_from_current_data() -> None:
    """Like Evidently, the current window's values decide: 12 integers in reference, 3 in current -> 'cat'."""
    reference = pd.DataFrame({"x": list(range(12)) * 10})
    current = pd.DataFrame({"x": [0, 1, 2] * 40})
    assert compute_drift(reference, current).column("x").column_type == "cat"


def test_declared_column_type_overrides_inference() -> None:
    """An integer code with 3 values compared as numeric."""
    frame = pd.DataFrame({"x": [1, 2, 3] * 10})
    assert compute_drift(frame, frame.copy(), column_types={"x": "num"}).column("x").column_type == "num"


# --- values, overrides and verdicts ---------------------------------------------------------------------


def test_nan_and_infinite_values_are_dropped_per_column() -> None:
    """Each column compares its own finite values; the counts say how many."""
    reference = pd.DataFrame({"x": [np.nan, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "y": list("aabbcc") + [None]})
    current = pd.DataFrame({"x": [np.inf, -np.inf, 2.0, 3.0, 4.0, 5.0, 9.0], "y": list("abcabca")})
    report = compute_drift(reference, current)
    x = report.column("x")
    assert (x.reference_rows, x.current_rows) == (6, 5)
    expected = kolmogorov_smirnov(np.array([1.0, 2, 3, 4, 5, 6]), np.array([2.0, 3, 4, 5, 9]), 0.05)[0]
    assert x.score == pytest.approx(expected, abs=1e-12)
    assert (report.column("y").reference_rows, report.column("y").current_rows) == (6, 7)


def test_stattest_and_threshold_can_be_set_per_column() -> None:
    """A named test with its own threshold replaces the default choice for that column only."""
    reference = pd.DataFrame({"a": normal(2000), "b": normal(2000, seed=2)})
    current = pd.DataFrame({"a": normal(2000, 0.05, seed=3), "b": normal(2000, 0.05, seed=4)})
    report = compute_drift(reference, current, stattests={"a": "psi"}, thresholds={"a": 0.5, "b": 0.01})
    a, b = report.column("a"), report.column("b")
    assert (a.method, a.threshold, b.method, b.threshold) == ("psi", 0.5, "wasserstein", 0.01)
    assert b.score == pytest.approx(wasserstein_normed(reference["b"].to_numpy(), current["b"].to_numpy(), 0.1)[0])
    assert b.drifted is True


def test_dataset_drifts_when_the_drifted_share_reaches_the_threshold() -> None:
    """One of two columns drifted is a share of 0.5: drift at threshold 0.5, none at 0.6."""
    still = normal(500, seed=1)
    reference = pd.DataFrame({"moved": normal(500), "still": still})
    current = pd.DataFrame({"moved": normal(500, 2.0, seed=2), "still": still[::-1]})
    at_half = compute_drift(reference, current)
    assert (at_half.drifted_columns, at_half.drift_share, at_half.dataset_drifted) == (("moved",), 0.5, True)
    assert compute_drift(reference, current, drift_share_threshold=0.6).dataset_drifted is False


def test_report_to_dict_holds_every_column_and_the_verdict() -> None:
    """The JSON-ready form carries each column's fields and the dataset-level figures."""
    reference = pd.DataFrame({"x": normal(100)})
    current = pd.DataFrame({"x": normal(100, 3.0, seed=1)})
    document = compute_drift(reference, current).to_dict()
    assert document["columns"][0]["column"] == "x" and document["columns"][0]["method"] == "ks"
    assert set(document["columns"][0]) == {
        "column", "column_type", "method", "score", "threshold", "drifted", "reference_rows", "current_rows"
    }
    assert {key: document[key] for key in ("number_of_columns", "number_of_drifted_columns", "drift_share")} == {
        "number_of_columns": 1, "number_of_drifted_columns": 1, "drift_share": 1.0
    }
    assert document["dataset_drifted"] is True and document["skipped"] == []


def test_a_score_that_is_not_a_number_is_null_in_the_dict() -> None:
    """Chi-squared over a single category has no p-value; JSON gets null rather than NaN."""
    frame = pd.DataFrame({"c": ["a"] * 10})
    report = compute_drift(frame, frame.copy(), stattests={"c": "chisquare"})
    assert math.isnan(report.column("c").score)
    assert report.to_dict()["columns"][0]["score"] is None


def test_prediction_drift_compares_the_output_column() -> None:
    """The model's output column is tested like a feature (here a shifted regression output)."""
    reference = pd.DataFrame({"output.prediction": normal(300), "input.x": normal(300)})
    current = pd.DataFrame({"output.prediction": normal(300, 1.0, seed=1), "input.x": normal(300)})
    drift = prediction_drift(reference, current)
    assert (drift.column, drift.method, drift.drifted) == ("output.prediction", "ks", True)


# --- errors -------------------------------------------------------------------------------------------


def test_schema_mismatch_names_added_removed_and_retyped_columns() -> None:
    """Columns that appear, disappear or change kind of values are all named in one error."""
    reference = pd.DataFrame({"kept": [1.0, 2.0], "dropped": [1, 2], "age": [30.0, 40.0]})
    current = pd.DataFrame({"kept": [1.0, 2.0], "new": [1, 2], "age": ["30", "40"]})
    with pytest.raises(SchemaMismatchError) as raised:
        compute_drift(reference, current)
    error = raised.value
    assert (error.added, error.removed, error.retyped) == (("new",), ("dropped",), {"age": ("numeric", "string")})
    assert "columns only in current: ['new']" in str(error)
    assert "columns missing from current: ['dropped']" in str(error)
    assert "'age' is numeric in reference but string in current" in str(error)


def test_integer_becoming_float_is_not_a_schema_change() -> None:
    """An integer column gains a missing value and becomes float: the same kind of values."""
    reference = pd.DataFrame({"x": np.arange(20)})
    current = pd.DataFrame({"x": np.append(np.arange(19, dtype=float), np.nan)})
    assert compute_drift(reference, current).column("x").current_rows == 19


def test_explicit_columns_must_exist_in_both_datasets() -> None:
    """A listed column missing from current is a schema mismatch; one missing everywhere a typo."""
    reference = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0]})
    current = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(SchemaMismatchError, match=r"columns missing from current: \['b'\]"):
        compute_drift(reference, current, columns=["a", "b"])
    with pytest.raises(DriftInputError, match=r"columns \['zz'\] are in neither dataset"):
        compute_drift(reference, current, columns=["zz"])
    assert [c.column for c in compute_drift(reference, current, columns=["a"]).columns] == ["a"]


def test_an_explicit_column_that_cannot_be_typed_must_be_declared() -> None:
    """Listing an unsigned column, or giving it a test, without declaring its type says how to fix it."""
    frame = pd.DataFrame({"id": np.arange(10, dtype=np.uint8) % 4, "x": np.arange(10.0)})
    for options in ({"columns": ["id"]}, {"stattests": {"id": "psi"}}):
        with pytest.raises(DriftInputError, match=r"column 'id' cannot be compared: unsigned integers .*declare its type"):
            compute_drift(frame, frame.copy(), **options)
    assert compute_drift(frame, frame.copy(), column_types={"id": "cat"}).column("id").method == "chisquare"


@pytest.mark.parametrize("empty", ["current", "reference"])
def test_an_empty_dataset_is_an_empty_window(empty: str) -> None:
    """No rows to compare is an error naming the dataset, never 'no drift'."""
    full = pd.DataFrame({"x": [1.0, 2.0]})
    frames = {"reference": full, "current": full, empty: full.iloc[0:0]}
    with pytest.raises(EmptyWindowError, match=f"the {empty} data has no rows"):
        compute_drift(frames["reference"], frames["current"])


def test_a_column_without_values_in_current_is_an_empty_window() -> None:
    """A feature that is null throughout the window is reported with its name."""
    reference = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]})
    with pytest.raises(EmptyWindowError, match="column 'x' has no values in the current data"):
        compute_drift(reference, pd.DataFrame({"x": [np.nan, np.inf], "c": ["a", "b"]}))
    with pytest.raises(EmptyWindowError, match="column 'c' has no values in the current data"):
        compute_drift(reference, pd.DataFrame({"x": [1.0, 2.0], "c": pd.Series([None, None], dtype=object)}),
                      column_types={"c": "cat"})


def test_options_that_do_not_fit_are_refused_with_the_allowed_values() -> None:
    """Unknown tests, tests for another type, unknown types, stray column names and bad shares."""
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "a"]})
    with pytest.raises(UnknownStatTestError, match="no stattest named 'kolmogorov'"):
        compute_drift(frame, frame, stattests={"x": "kolmogorov"})
    with pytest.raises(StatTestColumnTypeError, match="'wasserstein' does not apply to column type 'cat'"):
        compute_drift(frame, frame, stattests={"c": "wasserstein"})
    with pytest.raises(DriftInputError, match=r"column_types\['x'\] is 'numeric'; allowed: \['num', 'cat', 'text'\]"):
        compute_drift(frame, frame, column_types={"x": "numeric"})
    with pytest.raises(DriftInputError, match=r"thresholds names columns that are not compared: \['y'\]"):
        compute_drift(frame, frame, thresholds={"y": 0.1})
    with pytest.raises(DriftInputError, match=r"drift_share_threshold must be in \(0, 1\]; got 1.5"):
        compute_drift(frame, frame, drift_share_threshold=1.5)
    with pytest.raises(DriftInputError, match="column 'c' is compared as numeric but its reference values are of dtype"):
        compute_drift(frame, frame, column_types={"c": "num"})


# --- performance drift ------------------------------------------------------------------------------


def test_classification_performance_joins_labels_on_request_id() -> None:
    """Matched requests r1-r4 predicted a, a, b, b against truth a, b, b, b: accuracy 3/4; F1 of
    class a = 2*1/(2+1), of class b = 2*2/(2+3), averaged. The unlabelled r5 and the label of an
    unknown request x9 are left out."""
    predictions = pd.DataFrame({"request_id": ["r1", "r2", "r3", "r4", "r5"], "output.prediction": list("aabbb")})
    labels = pd.DataFrame({"request_id": ["r4", "r3", "r2", "r1", "x9"], "label": list("bbbaa")})
    figures = performance_drift(predictions, labels, "classification")
    assert figures == {"accuracy": pytest.approx(0.75), "f1": pytest.approx((2 / 3 + 4 / 5) / 2)}


def test_classification_matches_numeric_labels_with_string_predictions() -> None:
    """A label read from CSV as 1 and a prediction stored as "1" are the same class."""
    predictions = pd.DataFrame({"request_id": ["a", "b"], "output.prediction": ["1", "0"]})
    labels = pd.DataFrame({"request_id": ["a", "b"], "label": [1, 1]})
    assert performance_drift(predictions, labels, "classification")["accuracy"] == pytest.approx(0.5)


def test_regression_performance_is_mae_and_rmse() -> None:
    """Errors 1, -3 and 0 (one request counted once though recorded twice): MAE 4/3, RMSE sqrt(10/3)."""
    predictions = pd.DataFrame(
        {"request_id": ["a", "b", "c", "c"], "output.prediction": [2.0, 1.0, 5.0, 5.0]}
    )
    labels = pd.DataFrame({"request_id": ["a", "b", "c"], "label": [1.0, 4.0, 5.0]})
    assert performance_drift(predictions, labels, "regression") == {
        "mae": pytest.approx(4 / 3), "rmse": pytest.approx(math.sqrt(10 / 3))
    }


def test_performance_refuses_ambiguous_or_missing_input() -> None:
    """Repeated labels, no matching request, missing columns and unknown tasks are errors."""
    predictions = pd.DataFrame({"request_id": ["a", "b"], "output.prediction": [1.0, 2.0]})
    with pytest.raises(DriftInputError, match="labels hold 1 repeated request_id values"):
        performance_drift(predictions, pd.DataFrame({"request_id": ["a", "a"], "label": [1.0, 2.0]}), "regression")
    with pytest.raises(EmptyWindowError, match="labelled predictions"):
        performance_drift(predictions, pd.DataFrame({"request_id": ["z"], "label": [1.0]}), "regression")
    with pytest.raises(DriftInputError, match=r"labels lack columns \['label'\]"):
        performance_drift(predictions, pd.DataFrame({"request_id": ["a"]}), "regression")
    with pytest.raises(DriftInputError, match=r"task must be one of \['classification', 'regression'\]"):
        performance_drift(predictions, pd.DataFrame({"request_id": ["a"], "label": [1.0]}), "ranking")
