"""Column types the drift engine compares, and how a column's type is inferred from its values.

Inference follows Evidently's (``evidently.core.datasets.infer_column_type``), applied to the
current data as Evidently does:

- float columns are numeric;
- integer columns are categorical when they hold at most 10 distinct values, numeric otherwise;
- boolean and pandas ``category`` columns are categorical;
- string columns are categorical, unless more than half of their non-null values are distinct:
  Evidently calls those text and compares them with a text-content model, which this engine does
  not do, so they are left out (as are datetime and other columns) with the reason recorded.

Unlike Evidently, nullable ``Int64``/``Float64`` columns are treated like ``int64``/``float64``
(Evidently matches dtype names case-sensitively and calls them unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
from pandas.api import types as ptypes

ColumnType = Literal["num", "cat"]
NUMERIC: ColumnType = "num"
CATEGORICAL: ColumnType = "cat"
COLUMN_TYPES: tuple[ColumnType, ...] = (NUMERIC, CATEGORICAL)

INTEGER_CATEGORY_LIMIT = 10
TEXT_DISTINCT_SHARE = 0.5


@dataclass(frozen=True)
class InferredType:
    """The type inferred for a column, or None with the reason it cannot be compared."""

    column_type: ColumnType | None
    reason: str = ""


def infer_column_type(values: pd.Series) -> InferredType:
    """Infer 'num' or 'cat' for a column the way Evidently does (see the module docstring)."""
    dtype = values.dtype
    if ptypes.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return InferredType(CATEGORICAL)
    if ptypes.is_float_dtype(dtype):
        return InferredType(NUMERIC)
    if ptypes.is_integer_dtype(dtype):
        few_values = values.nunique() <= INTEGER_CATEGORY_LIMIT
        return InferredType(CATEGORICAL if few_values else NUMERIC)
    if ptypes.is_datetime64_any_dtype(dtype):
        return InferredType(None, "datetime values are not compared")
    if ptypes.is_string_dtype(dtype):
        present = values.dropna()
        # Like Evidently, only the first and last values tell whether an object column holds strings.
        if not present.empty and isinstance(present.iloc[0], str) and isinstance(present.iloc[-1], str):
            if present.nunique() > present.size * TEXT_DISTINCT_SHARE:
                return InferredType(None, "text (more than half of the values are distinct)")
            return InferredType(CATEGORICAL)
    return InferredType(None, f"values of dtype {dtype} are neither numeric nor categorical")


def value_kind(values: pd.Series) -> str:
    """The broad kind of a column's values; a change of kind between datasets is a schema change.

    Integer and float share a kind: an integer column that gains a missing value becomes float.
    """
    dtype = values.dtype
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_numeric_dtype(dtype):
        return "numeric"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype) or ptypes.is_string_dtype(dtype):
        return "string"
    return str(dtype)

