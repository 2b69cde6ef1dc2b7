"""Errors the drift engine raises for input it cannot compare; all are ValueErrors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DriftInputError(ValueError):
    """The data or the options given to the drift engine cannot be compared as asked."""


class SchemaMismatchError(DriftInputError):
    """Reference and current disagree on which columns exist or on a column's kind of values."""

    def __init__(
        self,
        added: Sequence[str] = (),
        removed: Sequence[str] = (),
        retyped: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.added = tuple(added)
        self.removed = tuple(removed)
        self.retyped = dict(retyped or {})
        problems = []
        if self.added:
            problems.append(f"columns only in current: {list(self.added)}")
        if self.removed:
            problems.append(f"columns missing from current: {list(self.removed)}")
        if self.retyped:
            changes = ", ".join(
                f"'{column}' is {before} in reference but {after} in current"
                for column, (before, after) in self.retyped.items()
            )
            problems.append(f"columns retyped: {changes}")
        super().__init__("reference and current schemas differ: " + "; ".join(problems))


class EmptyWindowError(DriftInputError):
    """A dataset (or one of its columns) has no usable values to compare."""

    def __init__(self, dataset: str, column: str | None = None) -> None:
        self.dataset = dataset
        self.column = column
        if column is None:
            message = f"the {dataset} data has no rows"
        else:
            message = f"column '{column}' has no values in the {dataset} data once NaN and infinite values are dropped"
        super().__init__(message)


class UnknownStatTestError(DriftInputError):
    """A stattest name that is not registered."""

    def __init__(self, name: str, available: Sequence[str]) -> None:
        super().__init__(f"no stattest named '{name}'; available stattests: {sorted(available)}")


class StatTestColumnTypeError(DriftInputError):
    """A registered stattest asked for a column type it does not apply to."""

    def __init__(self, name: str, column_type: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"stattest '{name}' does not apply to column type '{column_type}'; it applies to: {sorted(allowed)}"
        )
