"""Drift statistics over numpy arrays, one function per test, and the registry naming them.

Every function takes ``(reference, current, threshold)`` — two non-empty arrays without NaN — and
returns ``(score, drifted)``. Definitions, thresholds and the comparison with the threshold
(``<`` or ``<=`` for p-values, ``>=`` for distances) are Evidently's (legacy
``calculations/stattests``), so that scores agree with Evidently's to floating-point rounding.

Numeric tests that sort accept unsorted data but skip the sort when their input is already sorted:
the engine sorts each numeric column once and hands the sorted arrays to whichever test it chose.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import importlib
from types import ModuleType

import numpy as np

from monitoring.drift.columns import CATEGORICAL, NUMERIC, TEXT, ColumnType
from monitoring.drift.errors import StatTestColumnTypeError, UnknownStatTestError
from monitoring.drift.text_drift import absolute_text_content_drift, percentile_text_content_drift

StatTestFunction = Callable[[np.ndarray, np.ndarray, float], tuple[float, bool]]

# Evidently bins numeric columns by histogram only when the reference holds more than this many
# distinct values; below it each distinct value is its own bin.
HISTOGRAM_MIN_DISTINCT = 20
# Empty bins get this share (or a millionth of the smallest non-empty share, if smaller) so PSI's
# logarithm stays finite: Evidently's ``get_binned_data(feel_zeroes=True)``.
EMPTY_BIN_SHARE = 0.0001
# Floor for the reference standard deviation dividing the Wasserstein distance.
WASSERSTEIN_MIN_NORM = 0.001
# scipy.stats.ks_2samp computes exact p-values up to this sample size and asymptotic ones above it.
KS_EXACT_MAX_ROWS = 10_000


class ScoreKind(enum.Enum):
    """How a score relates to drift."""

    P_VALUE = "p_value"  # drift when the p-value falls below the threshold
    DISTANCE = "distance"  # drift when the distance reaches the threshold
    CLASSIFIER_AUC = "classifier_auc"  # drift when a domain classifier's ROC AUC exceeds the threshold


def kolmogorov_smirnov(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Two-sided two-sample Kolmogorov-Smirnov p-value; drift when p <= threshold."""
    _require_values(reference, current)
    if max(reference.size, current.size) <= KS_EXACT_MAX_ROWS:
        p_value = float(_scipy_stats().ks_2samp(reference, current).pvalue)
    else:
        p_value = _ks_asymptotic_p_value(_sorted(reference), _sorted(current))
    return p_value, p_value <= threshold


def wasserstein_normed(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """First Wasserstein distance divided by the reference standard deviation; drift when >= threshold."""
    _require_values(reference, current)
    # scipy's wasserstein_distance, which Evidently calls, works on the values as float64.
    reference, current = reference.astype(np.float64, copy=False), current.astype(np.float64, copy=False)
    norm = max(float(np.std(reference)), WASSERSTEIN_MIN_NORM)
    score = _wasserstein_sorted(_sorted(reference), _sorted(current)) / norm
    return score, score >= threshold


def psi_numeric(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Population Stability Index of a numeric column; drift when >= threshold."""
    reference_shares, current_shares = _numeric_bin_shares(reference, current)
    return _psi(reference_shares, current_shares, threshold)


def psi_categorical(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Population Stability Index over the categories of both samples; drift when >= threshold."""
    reference_shares, current_shares = _value_shares(reference, current)
    return _psi(reference_shares, current_shares, threshold)


def jensen_shannon_numeric(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Jensen-Shannon distance (natural log) of a numeric column's bins; drift when >= threshold."""
    reference_shares, current_shares = _numeric_bin_shares(reference, current)
    return _jensen_shannon(reference_shares, current_shares, threshold)


def jensen_shannon_categorical(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Jensen-Shannon distance (natural log) over the categories of both samples; drift when >= threshold."""
    reference_shares, current_shares = _value_shares(reference, current)
    return _jensen_shannon(reference_shares, current_shares, threshold)


def chi_squared(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Chi-squared goodness-of-fit p-value of current's category counts against reference's
    proportions scaled to current's size; drift when p < threshold.

    A category absent from reference has an expected count of 0, an infinite statistic and p = 0.
    """
    reference_counts, current_counts = _joint_value_counts(reference, current)
    expected = reference_counts * (current.size / reference.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = float(_scipy_stats().chisquare(current_counts, expected).pvalue)
    return p_value, p_value < threshold


def z_test(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Two-sided z-test for the difference of two proportions; drift when p < threshold.

    The proportion is that of values other than the smallest value of both samples, which makes
    it the proportion of one class for binary data.
    """
    _require_values(reference, current)
    values = np.unique(np.concatenate([np.unique(reference), np.unique(current)]))
    if values.size == 1:
        return 1.0, 1.0 < threshold
    reference_share = float(np.count_nonzero(reference != values[0])) / reference.size
    current_share = float(np.count_nonzero(current != values[0])) / current.size
    pooled = (reference_share * reference.size + current_share * current.size) / (reference.size + current.size)
    z = (reference_share - current_share) / np.sqrt(pooled * (1 - pooled) * (1.0 / reference.size + 1.0 / current.size))
    # 1 - cdf rather than sf: Evidently's formula, which rounds tiny p-values to exactly 0.
    p_value = float(2 * (1 - _scipy_stats().norm.cdf(np.abs(z))))
    return p_value, p_value < threshold


@dataclass(frozen=True)
class StatTest:
    """A registered test: its metadata and its implementation per column type."""

    name: str
    display_name: str
    score_kind: ScoreKind
    default_threshold: float
    implementations: Mapping[ColumnType, StatTestFunction]

    @property
    def column_types(self) -> tuple[ColumnType, ...]:
        """Column types the test may be asked for by name."""
        return tuple(self.implementations)

    def function_for(self, column_type: ColumnType) -> StatTestFunction:
        """The implementation for a column type, or a StatTestColumnTypeError naming the allowed ones."""
        try:
            return self.implementations[column_type]
        except KeyError:
            raise StatTestColumnTypeError(self.name, column_type, self.column_types) from None


STATTESTS: Mapping[str, StatTest] = {
    test.name: test
    for test in (
        StatTest("ks", "K-S p_value", ScoreKind.P_VALUE, 0.05, {NUMERIC: kolmogorov_smirnov}),
        StatTest(
            "wasserstein", "Wasserstein distance (normed)", ScoreKind.DISTANCE, 0.1, {NUMERIC: wasserstein_normed}
        ),
        StatTest("psi", "PSI", ScoreKind.DISTANCE, 0.1, {NUMERIC: psi_numeric, CATEGORICAL: psi_categorical}),
        StatTest(
            "jensenshannon",
            "Jensen-Shannon distance",
            ScoreKind.DISTANCE,
            0.1,
            {NUMERIC: jensen_shannon_numeric, CATEGORICAL: jensen_shannon_categorical},
        ),
        StatTest("chisquare", "chi-square p_value", ScoreKind.P_VALUE, 0.05, {CATEGORICAL: chi_squared}),
        StatTest("z", "Z-test p_value", ScoreKind.P_VALUE, 0.05, {CATEGORICAL: z_test}),
        StatTest(
            "abs_text_content_drift", "Absolute text content drift", ScoreKind.CLASSIFIER_AUC, 0.55,
            {TEXT: absolute_text_content_drift},
        ),
        StatTest(
            "perc_text_content_drift", "Percentile text content drift", ScoreKind.CLASSIFIER_AUC, 0.95,
            {TEXT: percentile_text_content_drift},
        ),
    )
}


def get_stattest(name: str) -> StatTest:
    """The registered test called ``name``, or an UnknownStatTestError listing the registered names."""
    try:
        return STATTESTS[name]
    except KeyError:
        raise UnknownStatTestError(name, tuple(STATTESTS)) from None


def _scipy_stats() -> ModuleType:
    """scipy.stats, imported on first use: it takes over a second to import, and the tests Evidently
    picks for references over 1000 rows (Wasserstein, Jensen-Shannon) do without it, so a drift
    job (a new process every run) mostly never pays for it."""
    return importlib.import_module("scipy.stats")


def _jensen_shannon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """scipy.spatial.distance.jensenshannon(p, q) (natural log), step for step without importing scipy."""
    p, q = p / np.sum(p), q / np.sum(q)
    middle = (p + q) / 2.0
    divergence = float(np.sum(_relative_entropy(p, middle)) + np.sum(_relative_entropy(q, middle)))
    return float(np.sqrt(divergence / 2.0))


def _relative_entropy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy.special.rel_entr: x log(x / y) for x, y > 0; 0 where x == 0 (y is never 0 where x > 0 here)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0) / np.where(y > 0, y, 1.0)), 0.0)


def _require_values(reference: np.ndarray, current: np.ndarray) -> None:
    if reference.size == 0 or current.size == 0:
        raise ValueError(
            f"a drift test needs values on both sides; got {reference.size} reference and {current.size} current values"
        )


def _sorted(values: np.ndarray) -> np.ndarray:
    # Checking order costs one comparison pass; sorting an already sorted column again costs a full sort.
    if values.size < 2 or bool(np.all(values[:-1] <= values[1:])):
        return values
    return np.sort(values)


def _merge_sorted(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sorted samples merged in order, and for each merged value whether it came from reference."""
    combined = np.concatenate([reference, current])
    # A stable sort of two sorted runs is a single merge pass (timsort finds the runs).
    order = np.argsort(combined, kind="stable")
    return combined[order], order < reference.size


def _wasserstein_sorted(reference: np.ndarray, current: np.ndarray) -> float:
    """Area between the two empirical CDFs: sum over merged gaps of |F_ref - F_cur| * gap width.

    Within a run of tied values the gap is 0, so only the cumulative counts at each run's last
    value contribute, and those equal scipy's right-side searchsorted counts.
    """
    merged, from_reference = _merge_sorted(reference, current)
    gaps = np.diff(merged)
    del merged
    # In place, as large columns make every temporary array cost tens of megabytes.
    # Counting in float64 is exact up to 2**53 and several times faster than a cumsum that casts.
    reference_cdf = from_reference[:-1].astype(np.float64)
    np.cumsum(reference_cdf, out=reference_cdf)
    current_cdf = np.arange(1, gaps.size + 1, dtype=np.float64)
    current_cdf -= reference_cdf
    reference_cdf /= reference.size
    current_cdf /= current.size
    reference_cdf -= current_cdf
    np.abs(reference_cdf, out=reference_cdf)
    return float(np.dot(reference_cdf, gaps))


def _ks_asymptotic_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """scipy's ks_2samp 'asymp' two-sided p-value, computed from already sorted samples."""
    merged = np.concatenate([reference, current])
    reference_cdf = np.searchsorted(reference, merged, side="right") / reference.size
    current_cdf = np.searchsorted(current, merged, side="right") / current.size
    statistic = float(np.max(np.abs(reference_cdf - current_cdf)))
    larger, smaller = sorted((float(reference.size), float(current.size)), reverse=True)
    effective_size = larger * smaller / (larger + smaller)
    return float(np.clip(_scipy_stats().kstwo.sf(statistic, np.round(effective_size)), 0, 1))


def _numeric_bin_shares(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of each sample per bin: Sturges bins over both samples when reference has more than
    20 distinct values, else one bin per distinct value of either sample."""
    _require_values(reference, current)
    reference_sorted, current_sorted = _sorted(reference), _sorted(current)
    if _distinct_in_sorted(reference_sorted) <= HISTOGRAM_MIN_DISTINCT:
        return _value_shares(reference, current)
    edges = np.histogram_bin_edges(np.concatenate([reference_sorted, current_sorted]), bins="sturges")
    return (
        _histogram_sorted(reference_sorted, edges) / reference.size,
        _histogram_sorted(current_sorted, edges) / current.size,
    )


def _distinct_in_sorted(values: np.ndarray) -> int:
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1


def _histogram_sorted(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram's counts for explicit edges (last bin closed), read off sorted values."""
    positions = np.concatenate(
        [np.searchsorted(values, edges[:-1], side="left"), np.searchsorted(values, edges[-1:], side="right")]
    )
    return np.diff(positions)


def _value_shares(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _require_values(reference, current)
    reference_counts, current_counts = _joint_value_counts(reference, current)
    return reference_counts / reference.size, current_counts / current.size


def _joint_value_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each distinct value of either sample, in reference and in current."""
    _require_values(reference, current)
    if _are_small_codes(reference, current):
        size = int(max(reference.max(), current.max())) + 1
        reference_counts = np.bincount(reference, minlength=size)
        current_counts = np.bincount(current, minlength=size)
        present = (reference_counts > 0) | (current_counts > 0)
        return reference_counts[present], current_counts[present]
    values, positions = np.unique(np.concatenate([reference, current]), return_inverse=True)
    return (
        np.bincount(positions[: reference.size], minlength=values.size),
        np.bincount(positions[reference.size :], minlength=values.size),
    )


def _are_small_codes(reference: np.ndarray, current: np.ndarray) -> bool:
    """Non-negative integers no larger than the sample sizes: countable with bincount, no sort."""
    if not (np.issubdtype(reference.dtype, np.integer) and np.issubdtype(current.dtype, np.integer)):
        return False
    low = min(int(reference.min()), int(current.min()))
    high = max(int(reference.max()), int(current.max()))
    return low >= 0 and high <= reference.size + current.size


def _fill_empty_bins(shares: np.ndarray) -> np.ndarray:
    smallest = float(np.min(shares[shares != 0]))
    fill = smallest / 10**6 if smallest <= EMPTY_BIN_SHARE else EMPTY_BIN_SHARE
    return np.where(shares == 0, fill, shares)


def _psi(reference_shares: np.ndarray, current_shares: np.ndarray, threshold: float) -> tuple[float, bool]:
    reference_shares, current_shares = _fill_empty_bins(reference_shares), _fill_empty_bins(current_shares)
    score = float(np.sum((reference_shares - current_shares) * np.log(reference_shares / current_shares)))
    return score, score >= threshold


def _jensen_shannon(reference_shares: np.ndarray, current_shares: np.ndarray, threshold: float) -> tuple[float, bool]:
    score = _jensen_shannon_distance(reference_shares, current_shares)
    return score, score >= threshold
