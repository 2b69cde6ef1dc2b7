"""Drift statistics: each test's score on cases worked out by hand or by scipy directly, its
comparison with the threshold, and the registry's metadata (Evidently's names and defaults)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from monitoring.drift.errors import StatTestColumnTypeError, UnknownStatTestError
from monitoring.drift.stattests import (
    STATTESTS,
    ScoreKind,
    chi_squared,
    get_stattest,
    jensen_shannon_categorical,
    jensen_shannon_numeric,
    kolmogorov_smirnov,
    psi_categorical,
    psi_numeric,
    wasserstein_normed,
    z_test,
)


def categories(**counts: int) -> np.ndarray:
    """An array holding each named category as many times as given, e.g. categories(a=2, b=1)."""
    return np.array([name for name, count in counts.items() for _ in range(count)], dtype=object)


def shifted_normals(rows: int, shift: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, rows), rng.normal(shift, 1.0, rows + 13)


# --- Kolmogorov-Smirnov -------------------------------------------------------------------------


def test_ks_of_identical_samples_is_one_and_not_drift() -> None:
    """The same values on both sides give p = 1."""
    values = np.arange(50, dtype=float)
    assert kolmogorov_smirnov(values, values.copy(), 0.05) == (pytest.approx(1.0, abs=1e-5), False)


@pytest.mark.parametrize("rows", [300, 20_000], ids=["exact-p-value", "asymptotic-p-value"])
def test_ks_matches_scipy_on_shifted_normals(rows: int) -> None:
    """Small samples use scipy's exact p-value; above 10 000 rows the engine computes scipy's
    asymptotic one itself from sorted data, and both equal ks_2samp's."""
    reference, current = shifted_normals(rows, 0.08)
    expected = stats.ks_2samp(reference, current).pvalue
    score, drifted = kolmogorov_smirnov(reference, current, 0.05)
    assert score == pytest.approx(expected, abs=1e-12)
    assert drifted == (expected <= 0.05)


def test_ks_drifts_when_p_value_equals_threshold() -> None:
    """Evidently's K-S verdict is p <= threshold (the other p-value tests use <)."""
    reference, current = shifted_normals(200, 0.2)
    p_value, _ = kolmogorov_smirnov(reference, current, 0.05)
    assert kolmogorov_smirnov(reference, current, p_value)[1] is True


# --- Wasserstein (normed) -----------------------------------------------------------------------


def test_wasserstein_of_a_unit_shift_is_one_over_reference_std() -> None:
    """Moving [0, 1, 2, 3] by 1 moves all mass by 1: W1 = 1, divided by std = sqrt(1.25)."""
    score, drifted = wasserstein_normed(np.array([0.0, 1, 2, 3]), np.array([1.0, 2, 3, 4]), 0.1)
    assert score == pytest.approx(1 / math.sqrt(1.25), abs=1e-5)
    assert drifted is True


def test_wasserstein_of_a_constant_reference_is_normed_by_the_floor() -> None:
    """A reference with std 0 is normed by 0.001: one value in three moved by 1 gives W1 = 1/3."""
    score, _ = wasserstein_normed(np.array([5.0, 5, 5]), np.array([5.0, 5, 6]), 0.1)
    assert score == pytest.approx((1 / 3) / 0.001, abs=1e-5)


def test_wasserstein_matches_scipy_with_ties_and_unequal_sizes() -> None:
    """Rounded values (many ties) and unequal sizes: scipy's distance over numpy's std."""
    rng = np.random.default_rng(3)
    reference = np.round(rng.normal(0, 1, 5000), 1)
    current = np.round(rng.normal(0.1, 1.2, 3001), 1)
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert wasserstein_normed(reference, current, 0.1)[0] == pytest.approx(expected, abs=1e-12)


def test_wasserstein_gives_the_same_score_for_sorted_and_unsorted_input() -> None:
    """Sorted input only skips a sort: the score does not depend on the input's order."""
    reference, current = shifted_normals(1000, 0.3)
    unsorted = wasserstein_normed(reference, current, 0.1)
    assert wasserstein_normed(np.sort(reference), np.sort(current), 0.1) == (pytest.approx(unsorted[0], abs=1e-12), True)


def test_distance_drifts_when_score_equals_threshold() -> None:
    """Distances drift at score >= threshold."""
    score, _ = wasserstein_normed(np.array([0.0, 1, 2, 3]), np.array([1.0, 2, 3, 4]), 0.1)
    assert wasserstein_normed(np.array([0.0, 1, 2, 3]), np.array([1.0, 2, 3, 4]), score)[1] is True


# --- PSI ----------------------------------------------------------------------------------------


def test_psi_of_a_hand_made_histogram() -> None:
    """Shares a/b/c of 0.5/0.3/0.2 against 0.4/0.3/0.3: sum of (r - c) * ln(r / c)."""
    expected = (0.5 - 0.4) * math.log(0.5 / 0.4) + 0 + (0.2 - 0.3) * math.log(0.2 / 0.3)
    score, drifted = psi_categorical(categories(a=50, b=30, c=20), categories(a=40, b=30, c=30), 0.1)
    assert score == pytest.approx(expected, abs=1e-5)
    assert score == pytest.approx(0.0628609, abs=1e-5)
    assert drifted is False


def test_psi_fills_an_empty_bin_with_a_ten_thousandth() -> None:
    """A category absent from reference gets share 0.0001 there (the smallest real share, 0.5, is larger)."""
    expected = 0 + (0.5 - 0.4) * math.log(0.5 / 0.4) + (0.0001 - 0.1) * math.log(0.0001 / 0.1)
    score, drifted = psi_categorical(categories(a=50, b=50), categories(a=50, b=40, c=10), 0.1)
    assert score == pytest.approx(expected, abs=1e-5)
    assert drifted is True


def test_psi_fills_empty_bins_with_a_millionth_of_a_tiny_smallest_share() -> None:
    """When the smallest non-empty share is at most 0.0001, empty bins get a millionth of it."""
    # Reference: b's share 0.00005 is the smallest, so empty c gets 0.00005 / 10**6.
    reference = categories(a=19_999, b=1)
    # Current: the smallest share is 0.5, so empty b gets 0.0001.
    current = categories(a=10_000, c=10_000)
    r_a, r_b, r_c = 19_999 / 20_000, 1 / 20_000, 1 / 20_000 / 10**6
    c_a, c_b, c_c = 0.5, 0.0001, 0.5
    expected = sum((r - c) * math.log(r / c) for r, c in ((r_a, c_a), (r_b, c_b), (r_c, c_c)))
    assert psi_categorical(reference, current, 0.1)[0] == pytest.approx(expected, abs=1e-5)


def test_psi_of_numeric_data_with_many_values_uses_sturges_bins_over_both_samples() -> None:
    """More than 20 distinct reference values: numpy's Sturges edges over both samples, counts
    as np.histogram (last bin closed), then PSI of the shares."""
    reference = np.arange(30, dtype=float)
    current = np.arange(10, 40, dtype=float)
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
    r = np.histogram(reference, edges)[0] / reference.size
    c = np.histogram(current, edges)[0] / current.size
    r[r == 0], c[c == 0] = 0.0001, 0.0001
    expected = float(np.sum((r - c) * np.log(r / c)))
    assert edges.size == 8  # ceil(log2(60) + 1) = 7 bins
    assert psi_numeric(reference, current, 0.1)[0] == pytest.approx(expected, abs=1e-9)


def test_psi_of_numeric_data_with_few_values_bins_each_value() -> None:
    """At most 20 distinct reference values: one bin per value, as for categories."""
    reference, current = np.array([1.0, 1, 2, 2]), np.array([1.0, 2, 2, 2])
    expected = (0.5 - 0.25) * math.log(0.5 / 0.25) + (0.5 - 0.75) * math.log(0.5 / 0.75)
    assert psi_numeric(reference, current, 0.1)[0] == pytest.approx(expected, abs=1e-5)


# --- Jensen-Shannon -----------------------------------------------------------------------------


def test_jensen_shannon_by_hand_leaves_empty_bins_empty() -> None:
    """p = (0.5, 0.5), q = (1, 0), m = (0.75, 0.25): sqrt((KL(p||m) + KL(q||m)) / 2), natural log,
    with q's empty bin counted as 0 (no filling, unlike PSI)."""
    kl_p = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl_q = 1.0 * math.log(1 / 0.75)
    expected = math.sqrt((kl_p + kl_q) / 2)
    score, drifted = jensen_shannon_categorical(categories(x=1, y=1), categories(x=2), 0.1)
    assert score == pytest.approx(expected, abs=1e-5)
    assert score == pytest.approx(0.464501, abs=1e-5)
    assert drifted is True


def test_jensen_shannon_of_numeric_data_with_few_values_bins_each_value() -> None:
    """Numeric columns with at most 20 distinct reference values are binned per value."""
    reference, current = np.array([0.0, 1.0]), np.array([0.0, 0.0])
    assert jensen_shannon_numeric(reference, current, 0.1)[0] == pytest.approx(0.464501, abs=1e-5)


def test_jensen_shannon_of_identical_samples_is_zero() -> None:
    """No difference, no distance."""
    reference, _ = shifted_normals(500, 0.0)
    assert jensen_shannon_numeric(reference, reference.copy(), 0.1) == (pytest.approx(0.0, abs=1e-5), False)


# --- chi-squared and z ----------------------------------------------------------------------------


def test_chi_squared_scales_reference_proportions_to_current_size() -> None:
    """Reference a/b 50/50, current 30/10: expected 20/20, statistic 10 on 1 degree of freedom,
    p = erfc(sqrt(5))."""
    score, drifted = chi_squared(categories(a=50, b=50), categories(a=30, b=10), 0.05)
    assert score == pytest.approx(math.erfc(math.sqrt(5)), abs=1e-9)
    assert score == pytest.approx(0.0015654, abs=1e-5)
    assert drifted is True


def test_chi_squared_of_a_category_new_in_current_is_zero() -> None:
    """A category absent from reference has expected count 0: p = 0."""
    assert chi_squared(categories(a=5, b=5), categories(a=5, b=4, c=1), 0.05) == (0.0, True)


def test_z_test_of_two_proportions_by_hand() -> None:
    """60% vs 40% ones in 100 rows each: pooled 0.5, z = 0.2 / sqrt(0.25 * 0.02), p two-sided."""
    reference = np.array([1] * 60 + [0] * 40)
    current = np.array([1] * 40 + [0] * 60)
    z = 0.2 / math.sqrt(0.25 * 0.02)
    expected = 2 * (1 - stats.norm.cdf(z))
    score, drifted = z_test(reference, current, 0.05)
    assert score == pytest.approx(expected, abs=1e-9)
    assert score == pytest.approx(0.0046777, abs=1e-5)
    assert drifted is True


def test_z_test_of_one_shared_value_is_one() -> None:
    """Both samples hold only the same value: p = 1 (Evidently's special case)."""
    assert z_test(categories(a=3), categories(a=5), 0.05) == (1.0, False)


def test_categorical_tests_score_codes_like_the_values_they_stand_for() -> None:
    """Integer codes (what the engine passes) and the original strings give the same scores."""
    reference, current = categories(a=7, b=2, c=1), categories(a=3, b=5, d=2)
    lookup = {"a": 0, "b": 1, "c": 2, "d": 3}
    reference_codes = np.array([lookup[v] for v in reference])
    current_codes = np.array([lookup[v] for v in current])
    for test in (chi_squared, z_test, psi_categorical, jensen_shannon_categorical):
        assert test(reference_codes, current_codes, 0.05)[0] == pytest.approx(
            test(reference, current, 0.05)[0], abs=1e-12
        ), test.__name__


@pytest.mark.parametrize("test", [kolmogorov_smirnov, wasserstein_normed, psi_numeric, chi_squared, z_test])
def test_empty_samples_are_rejected(test) -> None:
    """A test needs values on both sides."""
    with pytest.raises(ValueError, match="needs values on both sides"):
        test(np.array([1.0, 2.0]), np.array([], dtype=float), 0.05)


# --- registry -------------------------------------------------------------------------------------


def test_registry_carries_evidentlys_names_defaults_and_column_types() -> None:
    """Name -> (display name, score kind, default threshold, column types), as Evidently registers them."""
    assert {
        name: (test.display_name, test.score_kind, test.default_threshold, set(test.column_types))
        for name, test in STATTESTS.items()
    } == {
        "ks": ("K-S p_value", ScoreKind.P_VALUE, 0.05, {"num"}),
        "wasserstein": ("Wasserstein distance (normed)", ScoreKind.DISTANCE, 0.1, {"num"}),
        "psi": ("PSI", ScoreKind.DISTANCE, 0.1, {"num", "cat"}),
        "jensenshannon": ("Jensen-Shannon distance", ScoreKind.DISTANCE, 0.1, {"num", "cat"}),
        "chisquare": ("chi-square p_value", ScoreKind.P_VALUE, 0.05, {"cat"}),
        "z": ("Z-test p_value", ScoreKind.P_VALUE, 0.05, {"cat"}),
        "abs_text_content_drift": ("Absolute text content drift", ScoreKind.CLASSIFIER_AUC, 0.55, {"text"}),
        "perc_text_content_drift": ("Percentile text content drift", ScoreKind.CLASSIFIER_AUC, 0.95, {"text"}),
    }


def test_unknown_stattest_name_lists_the_registered_ones() -> None:
    """A typo names itself and the valid choices."""
    with pytest.raises(UnknownStatTestError, match=r"no stattest named 'kss'; available stattests: \['abs_text_content_drift', 'chisquare'"):
        get_stattest("kss")


def test_stattest_for_a_column_type_it_does_not_support_is_refused() -> None:
    """K-S compares numbers only."""
    with pytest.raises(StatTestColumnTypeError, match=r"'ks' does not apply to column type 'cat'.*\['num'\]"):
        get_stattest("ks").function_for("cat")
