"""Which stattest compares a column: the one asked for by name, or Evidently's default choice.

Evidently's default (legacy ``stattests/registry.py``, ``_get_default_stattest``) depends on the
column type, the reference size (after NaN are dropped) and the number of distinct values of
reference and current together:

- reference of at most 1000 rows: ``z`` for at most 2 distinct values; otherwise ``ks`` for a
  numeric column with more than 5 distinct values, ``chisquare`` for any other column;
- larger reference: ``wasserstein`` for a numeric column with more than 5 distinct values,
  ``jensenshannon`` for any other column;
- a text column, whatever its values: ``perc_text_content_drift`` for a reference of at most 1000
  rows, ``abs_text_content_drift`` for a larger one.

The value-count tests (``z``, ``chisquare``) are categorical tests; Evidently applies them to
numeric columns with few values as they are, which here means running their categorical
implementation on the numeric values.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitoring.drift.columns import CATEGORICAL, NUMERIC, TEXT, ColumnType
from monitoring.drift.stattests import StatTest, StatTestFunction, get_stattest

SMALL_REFERENCE_MAX_ROWS = 1000
BINARY_MAX_VALUES = 2
FEW_NUMERIC_MAX_VALUES = 5


@dataclass(frozen=True)
class StatTestChoice:
    """The test comparing a column and the implementation to run for it."""

    stattest: StatTest
    function: StatTestFunction


def default_stattest_name(column_type: ColumnType, reference_rows: int, distinct_values: int) -> str:
    """Evidently's default test for a column (table in the module docstring)."""
    if column_type == TEXT:
        return "perc_text_content_drift" if reference_rows <= SMALL_REFERENCE_MAX_ROWS else "abs_text_content_drift"
    if reference_rows <= SMALL_REFERENCE_MAX_ROWS:
        if distinct_values <= BINARY_MAX_VALUES:
            return "z"
        if column_type == NUMERIC and distinct_values > FEW_NUMERIC_MAX_VALUES:
            return "ks"
        return "chisquare"
    if column_type == NUMERIC and distinct_values > FEW_NUMERIC_MAX_VALUES:
        return "wasserstein"
    return "jensenshannon"


def default_stattest(column_type: ColumnType, reference_rows: int, distinct_values: int) -> StatTestChoice:
    """Evidently's default test for a column, with the implementation to run."""
    stattest = get_stattest(default_stattest_name(column_type, reference_rows, distinct_values))
    if column_type in stattest.implementations:
        return StatTestChoice(stattest, stattest.implementations[column_type])
    return StatTestChoice(stattest, stattest.function_for(CATEGORICAL))


def named_stattest(name: str, column_type: ColumnType) -> StatTestChoice:
    """The test registered as ``name`` for a column type (UnknownStatTestError or
    StatTestColumnTypeError otherwise)."""
    stattest = get_stattest(name)
    return StatTestChoice(stattest, stattest.function_for(column_type))
