"""Check that the current window has the reference's columns with the same kinds of values.

Only the model's columns (`input.<name>`, `output.<name>`) are compared. Kinds, not exact types:
the collector stores every number as float64, so an integer reference column and a float window
column are both numeric; a column with no values at all in the window counts as removed (the
caller stopped sending it).
"""

from __future__ import annotations

import pandas as pd
from pandas.api import types as ptypes

from monitoring.drift_job.status import SchemaMismatch

INPUT_PREFIX = "input."
OUTPUT_PREFIX = "output."


def model_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if str(c).startswith((INPUT_PREFIX, OUTPUT_PREFIX))]


def value_kind(series: pd.Series) -> str:
    """numeric | boolean | datetime | categorical | missing (no values at all)."""
    present = series.dropna()
    if present.empty:
        return "missing"
    if ptypes.is_bool_dtype(series) or (series.dtype == object and present.map(type).eq(bool).all()):
        return "boolean"
    if ptypes.is_numeric_dtype(series):
        return "numeric"
    if ptypes.is_datetime64_any_dtype(series):
        return "datetime"
    return "categorical"


def check_schema(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, str]:
    """The kind of each model column; SchemaMismatch naming every added, removed or retyped column."""
    expected = {c: value_kind(reference[c]) for c in model_columns(reference)}
    if not any(c.startswith(INPUT_PREFIX) for c in expected):
        raise SchemaMismatch(
            f"the reference sample has no {INPUT_PREFIX}<feature> columns (it has {sorted(map(str, reference.columns))}); "
            "it must use the payload store's column names"
        )
    actual = {c: value_kind(current[c]) for c in model_columns(current)}
    removed = sorted(c for c in expected if actual.get(c, "missing") == "missing")
    added = sorted(c for c in actual if c not in expected and actual[c] != "missing")
    retyped = sorted(
        f"{c} ({expected[c]} -> {actual[c]})"
        for c in expected
        if c not in removed and expected[c] != "missing" and actual[c] != expected[c]
    )
    problems = [
        f"{label}: {', '.join(columns)}"
        for label, columns in (("removed", removed), ("added", added), ("retyped", retyped))
        if columns
    ]
    if problems:
        raise SchemaMismatch("the current window's columns differ from the reference sample: " + "; ".join(problems))
    return expected
