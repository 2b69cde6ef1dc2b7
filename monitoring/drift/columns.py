"""Column types the drift engine compares, and how a column's type is inferred from its values.

Inference is Evidently 0.7.23's (``evidently/core/datasets.py``, ``infer_column_type``), applied to
the current data as Evidently does. It matches on the dtype's *name*:

- ``float*`` (float64, float32) is numeric;
- ``int*`` (int8 .. int64) is categorical with at most 10 distinct values, numeric otherwise;
- ``bool`` and ``category`` are categorical;
- ``string``/``str`` and ``object`` columns whose first and last non-null values are strings are
  text when more than half of their non-null values are distinct, categorical otherwise;
- anything else gets no type and is left out of the comparison, the reason recorded: datetimes,
  lists, object columns of other values (booleans with a missing value read back from Parquet),
  and the dtypes whose names the rule does not match: unsigned ``uint*``, pandas' nullable
  ``Int64``/``Float64``/``boolean``. Declaring the column's type (``column_types``) compares it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
from pandas.api import types as ptypes

ColumnType = Literal["num", "cat", "text"]
NUMERIC: ColumnType = "num"
CATEGORICAL: ColumnType = "cat"
TEXT: ColumnType = "text"
COLUMN_TYPES: tuple[ColumnType, ...] = (NUMERIC, CATEGORICAL, TEXT)

INTEGER_CATEGORY_LIMIT = 10
TEXT_DISTINCT_SHARE = 0.5
_DECLARE = "declare its type to compare it (column_types, --column-type)"


@dataclass(frozen=True)
class InferredType:
    """The type inferred for a column, or None with the reason it cannot be compared (``reason``
    for people, ``code`` a short label for metrics)."""

    column_type: ColumnType | None
    reason: str = ""
    code: str = ""


def infer_column_type(values: pd.Series) -> InferredType:
    """Infer 'num', 'cat' or 'text' for a column the way Evidently does (see the module docstring)."""
    name = values.dtype.name
    if name.startswith("float"):
        return InferredType(NUMERIC)
    if name.startswith("int"):
        few_values = values.nunique() <= INTEGER_CATEGORY_LIMIT
        return InferredType(CATEGORICAL if few_values else NUMERIC)
    if name in ("string", "str"):
        return InferredType(_strings_type(values))
    if name == "object":
        return _object_type(values)
    if name in ("bool", "category"):
        return InferredType(CATEGORICAL)
    if name.startswith("datetime"):
        return InferredType(None, "datetime values are not compared", "datetime")
    if name.startswith("uint"):
        return InferredType(None, f"unsigned integers ({name}) get no type from Evidently, which types only int* dtypes; {_DECLARE}", "unsigned_integer")
    if name in ("Int8", "Int16", "Int32", "Int64", "Float32", "Float64", "boolean"):
        return InferredType(None, f"pandas' nullable dtype {name} gets no type from Evidently; {_DECLARE}", "nullable_dtype")
    return InferredType(None, f"values of dtype {name} are neither numeric, categorical nor text; {_DECLARE}", "other_dtype")


def _strings_type(values: pd.Series) -> ColumnType:
    return TEXT if values.nunique() > values.count() * TEXT_DISTINCT_SHARE else CATEGORICAL


def _object_type(values: pd.Series) -> InferredType:
    present = values.dropna()
    if present.empty:
        return InferredType(None, "the column has no values", "no_values")
    first, last = present.iloc[0], present.iloc[-1]
    # Like Evidently, only the first and last values tell what an object column holds.
    if isinstance(first, str) and isinstance(last, str):
        return InferredType(_strings_type(values))
    if isinstance(first, (list, tuple)) and isinstance(last, (list, tuple)):
        return InferredType(None, "lists are not compared", "list")
    if value_kind(values) == "boolean":
        return InferredType(
            None, f"booleans with missing values (object dtype, as Parquet reads them back) get no type from Evidently; {_DECLARE}",
            "boolean_with_missing",
        )
    return InferredType(None, f"object values of type {type(first).__name__} get no type from Evidently; {_DECLARE}", "other_objects")


def value_kind(values: pd.Series) -> str:
    """The broad kind of a column's values; a change of kind between datasets is a schema change.

    Integer and float share a kind: an integer column that gains a missing value becomes float.
    A boolean column that gains a missing value becomes an object column of booleans and None:
    still boolean.
    """
    dtype = values.dtype
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_numeric_dtype(dtype):
        return "numeric"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if dtype == object and ptypes.infer_dtype(values, skipna=True) == "boolean":
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype) or ptypes.is_string_dtype(dtype):
        return "string"
    return str(dtype)
