"""Column typing held against Evidently 0.7.23 on the typed edge cases where the engine used to
disagree: nullable booleans, unsigned and nullable integers, booleans with a missing value (object
dtype, as Parquet reads them back), text columns and int64 beyond 2**53.

The pinned scores and tests are what Evidently 0.7.23 (``Report([DataDriftPreset()])``, pandas
2.3, scikit-learn 1.9) printed for these same frames; ``benchmarks/drift_vs_evidently.py`` runs
the comparison live on larger ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.drift import compute_drift
from monitoring.drift.columns import infer_column_type

WORDS = {
    "reference": "price delivery quality support battery screen fast slow cheap sturdy".split(),
    "current": "refund broken late missing damaged price support rude wrong return".split(),
}


def big_ids(rng: np.random.Generator, rows: int, shifted: bool) -> np.ndarray:
    """5 clusters 2**55 apart of 3 neighbouring integers: 15 distinct int64 values, 5 once cast to float64."""
    cluster = rng.choice(5, rows, p=[0.1, 0.15, 0.2, 0.25, 0.3] if shifted else [0.2] * 5)
    return (np.int64(2**60) + cluster.astype(np.int64) * np.int64(2**55) + rng.integers(0, 3, rows)).astype(np.int64)


def typed_frames(rows: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = []
    for dataset in ("reference", "current"):
        rng = np.random.default_rng([seed, dataset == "current"])
        shifted = dataset == "current"
        flags = rng.random(rows) < (0.7 if shifted else 0.4)
        flags_with_missing = pd.Series(flags, dtype=object)
        if shifted:
            flags_with_missing[::9] = None
        frames.append(
            pd.DataFrame(
                {
                    "x": rng.normal(0.3 if shifted else 0.0, 1.0, rows),
                    "flag_nullable": pd.array(flags, dtype="boolean"),
                    "count_u8": rng.integers(0, 40 + 10 * shifted, rows).astype(np.uint8),
                    "count_nullable": pd.array(rng.integers(0, 30, rows), dtype="Int64"),
                    "flag_obj": flags_with_missing if shifted else pd.Series(flags),
                    "review": [" ".join(rng.choice(WORDS[dataset], 4)) + f" order {i}" for i in range(rows)],
                    "big_id": big_ids(rng, rows, shifted),
                }
            )
        )
    return frames[0], frames[1]


# Evidently 0.7.23 on typed_frames(rows): column -> (test, score, drifted); every other column left out.
EVIDENTLY = {
    200: {
        "x": ("ks", 0.0009668691315127085, True),
        "big_id": ("ks", 0.0220923622208589, True),
        "review": ("perc_text_content_drift", 0.9805044719123706, True),
    },
    3000: {
        "x": ("wasserstein", 0.31683870615493, True),
        "big_id": ("wasserstein", 0.3861099591571283, True),
        "review": ("abs_text_content_drift", 0.9963370753245991, True),
    },
}


@pytest.mark.parametrize("rows", sorted(EVIDENTLY))
def test_columns_tests_and_scores_agree_with_evidently(rows: int) -> None:
    """Same columns compared, same test per column, same score (to 1e-9) and verdict as Evidently."""
    report = compute_drift(*typed_frames(rows))
    ours = {c.column: (c.method, c.score, c.drifted) for c in report.columns}
    assert set(ours) == set(EVIDENTLY[rows])
    for column, (method, score, drifted) in EVIDENTLY[rows].items():
        assert ours[column][0] == method, column
        assert ours[column][1] == pytest.approx(score, abs=1e-9), column
        assert ours[column][2] is drifted, column


def test_each_column_evidently_leaves_out_is_skipped_with_its_reason() -> None:
    """Nullable booleans and integers, unsigned integers and object booleans are named, with a
    reason code, instead of being compared (Evidently types none of them)."""
    report = compute_drift(*typed_frames(200))
    assert {s.column: s.code for s in report.skipped} == {
        "flag_nullable": "nullable_dtype",
        "count_u8": "unsigned_integer",
        "count_nullable": "nullable_dtype",
        "flag_obj": "boolean_with_missing",
    }
    reasons = {s.column: s.reason for s in report.skipped}
    assert reasons["count_u8"].startswith("unsigned integers (uint8) get no type from Evidently")
    assert all("declare its type" in reason for reason in reasons.values())


def test_a_boolean_gaining_a_missing_value_is_not_a_schema_change() -> None:
    """Reference bool, current object of booleans and None: the window is compared (the column
    skipped, as Evidently does), not refused as a boolean turned 'string'."""
    reference, current = typed_frames(200)
    report = compute_drift(reference[["x", "flag_obj"]], current[["x", "flag_obj"]])
    assert [c.column for c in report.columns] == ["x"]
    # The other way round, current decides: plain booleans are categorical and the z-test runs.
    swapped = compute_drift(current[["flag_obj"]], reference[["flag_obj"]])
    assert swapped.column("flag_obj").method == "z" and swapped.column("flag_obj").drifted


def test_int64_beyond_2_53_keeps_its_distinct_values() -> None:
    """15 distinct ids that float64 would merge into 5: Evidently counts 15 and runs K-S, not chi-square."""
    reference, current = typed_frames(200)
    assert np.unique(reference["big_id"].astype(np.float64)).size == 5
    assert infer_column_type(current["big_id"]).column_type == "num"
    assert compute_drift(reference[["big_id"]], current[["big_id"]]).column("big_id").method == "ks"


def test_text_column_runs_the_text_test_and_a_declared_type_overrides() -> None:
    """More than half distinct: text, compared by the domain classifier; declared 'cat', chi-square."""
    reference, current = typed_frames(200)
    assert infer_column_type(current["review"]).column_type == "text"
    declared = compute_drift(reference[["review"]], current[["review"]], column_types={"review": "cat"})
    assert declared.column("review").method == "chisquare"
    unchanged = compute_drift(reference[["review"]], typed_frames(200, seed=8)[0][["review"]])
    assert unchanged.column("review").method == "perc_text_content_drift" and not unchanged.column("review").drifted
