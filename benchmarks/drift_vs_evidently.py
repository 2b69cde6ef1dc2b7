"""Drift engine against Evidently's DataDriftPreset on the same generated data; prints agreement,
time and memory.

Data: ``--rows`` rows in reference and in current (default 100k and 1M), 40 numeric columns
(normal, log-normal, uniform, exponential; about 1% NaN in some; 12 of them shifted or rescaled
in current) and 10 categorical string columns (2 to 38 categories; 3 of them re-weighted).

Each tool runs in its own fresh subprocess, which generates the same data from the same seed and
then runs the tool once. Time is the wall time of that one call (Evidently: ``Report.run``;
engine: ``compute_drift``), each including its own column type inference. Memory is read from the
kernel: after the data is built the child resets its peak resident set size (``echo 5 >
/proc/self/clear_refs``) and reads ``VmHWM`` from ``/proc/self/status`` when the call returns. So
the peak counts every allocation the tool makes (numpy, pandas, Python objects, C libraries,
none missed by sampling) and excludes the input data, which is the same for both. ``working`` is
that peak less the resident size just before the call; ``peak`` includes the input data.

First, every registered stattest is asked for by name and compared with Evidently's own
implementation on small and mid-sized samples (the preset's default choice only uses Wasserstein
and Jensen-Shannon at these sizes). Then typed edge cases: frames with nullable booleans, unsigned
and nullable integers, booleans with a missing value (object dtype), a text column and int64 ids
beyond 2**53, at 500 and 5000 rows, shifted and not; each column counts as agreeing when both
tools leave it out, or both compare it with the same test, scores within 1e-6 and the same verdict.
(``benchmarks/drift_job_time.py`` times the drift job as a whole process.)

Targets (issue 7), at 1M rows: identical verdicts, scores within 1e-6, at least 20x faster and
at most one third of Evidently's working memory.

Needs a Python with evidently 0.7 (and pandas < 3, which evidently 0.7 requires); it installs
nothing itself:

    python3 -m venv .venv-bench && .venv-bench/bin/pip install "evidently==0.7.23" "pandas<3" pyarrow
    .venv-bench/bin/python benchmarks/drift_vs_evidently.py [--rows 100000,1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PROJECT_DIR = Path(__file__).resolve().parents[1]
SEED = 20240607
NUMERIC_COLUMNS = 40
CATEGORICAL_COLUMNS = 10
SCORE_TOLERANCE = 1e-6
SPEEDUP_TARGET = 20.0
MEMORY_SHARE_TARGET = 1 / 3


def numeric_column(index: int, rows: int, rng: np.random.Generator, shifted: bool) -> np.ndarray:
    """One numeric column; shifted columns move their location or scale by a column-dependent step."""
    family = index % 4
    step = 0.04 * (1 + index % 6) if shifted else 0.0
    if family == 0:
        values = rng.normal(step, 1.0 + step, rows)
    elif family == 1:
        values = rng.lognormal(step, 0.5, rows)
    elif family == 2:
        values = rng.uniform(step, 1.0 + step, rows)
    else:
        values = rng.exponential(1.0 + 2 * step, rows)
    if index % 5 == 0:
        values[rng.random(rows) < 0.01] = np.nan
    return values


def categorical_column(index: int, rows: int, rng: np.random.Generator, shifted: bool) -> np.ndarray:
    """One column of strings: object arrays, as pandas reads them from Parquet or CSV."""
    count = 2 + index * 4
    weights = np.linspace(1.0, 2.0, count)
    if shifted:
        weights = weights[::-1] ** (1 + 0.1 * index)
    names = np.array([f"c{index}_{value}" for value in range(count)], dtype=object)
    return names[rng.choice(count, size=rows, p=weights / weights.sum())]


def generate(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current data, column by column so the peak while building stays near the data size."""
    frames = []
    for dataset in ("reference", "current"):
        rng = np.random.default_rng([SEED, rows, dataset == "current"])
        shift = dataset == "current"
        columns: dict[str, np.ndarray] = {}
        for index in range(NUMERIC_COLUMNS):
            columns[f"num_{index:02d}"] = numeric_column(index, rows, rng, shift and index % 10 < 3)
        for index in range(CATEGORICAL_COLUMNS):
            columns[f"cat_{index}"] = categorical_column(index, rows, rng, shift and index in (1, 4, 7))
        frames.append(pd.DataFrame(columns, copy=False))
    return frames[0], frames[1]


def run_engine(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    from monitoring.drift import compute_drift

    report = compute_drift(reference, current)
    return {
        "columns": {c.column: {"method": c.method, "score": c.score, "drifted": c.drifted} for c in report.columns},
        "drift_share": report.drift_share,
        "dataset_drifted": report.dataset_drifted,
    }


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    """Evidently's preset on the pair; its ``run`` takes current first."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
    return {"snapshot": snapshot}


def evidently_results(snapshot: Any) -> dict[str, Any]:
    """Per-column score, method and verdict (the ValueDrift tests) and the dataset verdict."""
    from monitoring.drift.stattests import STATTESTS

    names = {test.display_name: test.name for test in STATTESTS.values()}
    document = snapshot.dict()
    columns: dict[str, dict[str, Any]] = {}
    drift_share = None
    for metric in document["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {"method": names.get(config["method"], config["method"]), "score": float(metric["value"])}
        elif config["type"].endswith(":DriftedColumnsCount"):
            drift_share = float(metric["value"]["share"])
    dataset_drifted = None
    for test in document["tests"]:
        status = str(test["status"]).rsplit(".", 1)[-1].rstrip("'>").split(":")[0]
        failed = status.upper() == "FAIL"
        match = re.fullmatch(r"Value Drift for column (.+)", test["name"])
        if match:
            columns[match.group(1)]["drifted"] = failed
        elif test["metric_config"]["params"]["type"].endswith(":DriftedColumnsCount"):
            dataset_drifted = failed
    return {"columns": columns, "drift_share": drift_share, "dataset_drifted": dataset_drifted}


def measure(tool: str, rows: int) -> dict[str, Any]:
    """Runs in the child: build the data, then time one call of the tool and read its peak memory."""
    warnings.filterwarnings("ignore")
    # Imports happen before the measured call: their cost is not part of a drift computation.
    sys.path.insert(0, str(PROJECT_DIR))
    if tool == "evidently":
        import evidently.presets  # noqa: F401
    else:
        import monitoring.drift  # noqa: F401
    reference, current = generate(rows)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    resident_before = _status_mib("VmRSS")
    started = time.perf_counter()
    outcome = run_engine(reference, current) if tool == "engine" else run_evidently(reference, current)
    seconds = time.perf_counter() - started
    peak = _status_mib("VmHWM")
    if tool == "evidently":
        outcome = evidently_results(outcome["snapshot"])
    return {**outcome, "seconds": seconds, "peak_mib": peak, "working_mib": peak - resident_before}


def _status_mib(field: str) -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field}")
    return int(match.group(1)) / 1024


def run_child(tool: str, rows: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", tool, "--rows", str(rows)],
        check=True, capture_output=True, text=True, cwd=PROJECT_DIR,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def stattest_agreement() -> bool:
    """Every registered stattest, asked for by name, against Evidently's implementation of it on
    the same column: numeric and categorical data, with NaN and infinities, at sizes on both sides
    of the 1000-row and 10 000-row switches (the default preset only reaches some of them)."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    from monitoring.drift import compute_drift
    from monitoring.drift.stattests import STATTESTS

    rng = np.random.default_rng(SEED)
    evidently_types = {"num": ColumnType.Numerical, "cat": ColumnType.Categorical}
    worst: dict[str, float] = {}
    disagreements = 0
    # Silence scipy's and Evidently's notes on small samples, which would bury the figures.
    warnings.simplefilter("ignore")
    for rows in (200, 1000, 5000, 50_000):
        samples = {
            "num": (rng.normal(0, 1, rows), rng.normal(0.1, 1.1, rows + 7)),
            "cat": (rng.choice(list("abcdefg"), rows), rng.choice(list("abcdefgh"), rows + 7)),
        }
        samples["num"][0][::17] = np.nan
        samples["num"][1][::23] = np.inf
        for column_type, (reference_values, current_values) in samples.items():
            reference, current = pd.Series(reference_values), pd.Series(current_values)
            for name, test in STATTESTS.items():
                if column_type not in test.column_types:
                    continue
                theirs = get_stattest(reference, current, evidently_types[column_type], name)(
                    reference.replace([np.inf, -np.inf], np.nan).dropna(),
                    current.replace([np.inf, -np.inf], np.nan).dropna(),
                    evidently_types[column_type],
                    None,
                )
                ours = compute_drift(
                    pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}),
                    column_types={"x": column_type}, stattests={"x": name},
                ).column("x")
                key = f"{name} ({column_type})"
                worst[key] = max(worst.get(key, 0.0), abs(ours.score - theirs.drift_score))
                disagreements += ours.drifted != theirs.drifted
    print("\n=== every stattest by name vs Evidently's implementation (200 to 50,000 rows)")
    for key, difference in worst.items():
        print(f"{key:<22} max abs score difference {difference:.1e}")
    met = disagreements == 0 and max(worst.values()) <= SCORE_TOLERANCE
    print(f"verdict disagreements: {disagreements}; targets met: {'yes' if met else 'NO'}")
    return met


def typed_case(rows: int, seed: int, shifted: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current with the column types Evidently's inference treats specially."""
    frames = []
    for dataset in ("reference", "current"):
        rng = np.random.default_rng([seed, rows, dataset == "current"])
        moved = shifted and dataset == "current"
        flags = rng.random(rows) < (0.65 if moved else 0.45)
        opted_in = pd.Series(rng.random(rows) < 0.5, dtype=object)
        if dataset == "current":
            opted_in[rng.random(rows) < 0.05] = None
        clusters = rng.choice(6, rows, p=[0.3, 0.1, 0.1, 0.1, 0.1, 0.3] if moved else [1 / 6] * 6)
        vocabulary = ("late broken refund missing price" if moved else "fast sturdy cheap bright price").split()
        frames.append(
            pd.DataFrame(
                {
                    "amount": rng.gamma(2.0, 1.3 if moved else 1.0, rows),
                    "segment": rng.choice(["a", "b", "c", "d"], rows, p=[0.4, 0.3, 0.2, 0.1] if moved else [0.25] * 4),
                    "flag": pd.array(flags, dtype="boolean"),
                    "units": rng.integers(0, 500 + 100 * moved, rows).astype(np.uint32),
                    "visits": pd.array(rng.poisson(4 + moved, rows), dtype="Int64"),
                    "opted_in": opted_in if dataset == "current" else opted_in.astype(bool),
                    "comment": [" ".join(rng.choice(vocabulary, 5)) + f" #{i}" for i in range(rows)],
                    # 18 distinct int64 values, 6 once cast to float64.
                    "account": np.int64(2**61) + clusters.astype(np.int64) * np.int64(2**56) + rng.integers(0, 3, rows),
                }
            )
        )
    return frames[0], frames[1]


def typed_agreement() -> bool:
    """Evidently's DataDriftPreset and the engine on the typed edge cases, column by column."""
    from monitoring.drift import compute_drift

    warnings.simplefilter("ignore")
    print("\n=== typed edge cases: columns each tool compares, tests, scores and verdicts")
    agreeing = total = dataset_agreeing = cases = 0
    for rows in (500, 5000):
        for seed in (1, 2, 3):
            for shifted in (False, True):
                reference, current = typed_case(rows, seed, shifted)
                theirs = evidently_results(run_evidently(current=current, reference=reference)["snapshot"])
                report = compute_drift(reference, current)
                ours = {c.column: {"method": c.method, "score": c.score, "drifted": c.drifted} for c in report.columns}
                disagreements = []
                for column in reference.columns:
                    mine, other = ours.get(column), theirs["columns"].get(column)
                    same = (mine is None and other is None) or (
                        mine is not None and other is not None and mine["method"] == other["method"]
                        and abs(mine["score"] - other["score"]) <= SCORE_TOLERANCE and mine["drifted"] == other["drifted"]
                    )
                    agreeing += same
                    total += 1
                    if not same:
                        disagreements.append(f"{column}: engine {mine}, evidently {other}")
                cases += 1
                dataset_agreeing += report.dataset_drifted == theirs["dataset_drifted"]
                skipped = ",".join(s.column for s in report.skipped)
                print(
                    f"{rows:>5} rows seed {seed} {'shifted' if shifted else 'same   '}: compared {sorted(ours)} "
                    f"(skipped {skipped}); dataset {_verdict(report.dataset_drifted)}/{_verdict(theirs['dataset_drifted'])}"
                    + "".join(f"\n    DISAGREE {line}" for line in disagreements)
                )
    print(f"typed columns agreeing: {agreeing}/{total} ({agreeing / total:.1%}); dataset verdicts agreeing: {dataset_agreeing}/{cases}")
    return agreeing == total and dataset_agreeing == cases


def compare(rows: int) -> bool:
    """Run both tools on ``rows`` rows, print the comparison, return whether every target was met."""
    engine = run_child("engine", rows)
    evidently = run_child("evidently", rows)
    print(f"\n=== {rows:,} rows in reference and in current; {NUMERIC_COLUMNS} numeric + {CATEGORICAL_COLUMNS} categorical columns")
    print(f"{'column':<8} {'method':<14} {'engine score':>20} {'evidently score':>20} {'abs diff':>9}  verdicts")
    differences, verdicts_agree, methods_agree = [], 0, 0
    for column, theirs in evidently["columns"].items():
        ours = engine["columns"][column]
        difference = abs(ours["score"] - theirs["score"])
        differences.append(difference)
        verdicts_agree += ours["drifted"] == theirs["drifted"]
        methods_agree += ours["method"] == theirs["method"]
        method = ours["method"] if ours["method"] == theirs["method"] else f"{ours['method']}|{theirs['method']}"
        verdict = f"{_verdict(ours['drifted'])}/{_verdict(theirs['drifted'])}"
        print(f"{column:<8} {method:<14} {ours['score']:>20.15g} {theirs['score']:>20.15g} {difference:>9.1e}  {verdict}")
    columns = len(evidently["columns"])
    max_difference = max(differences)
    speedup = evidently["seconds"] / engine["seconds"]
    memory_share = engine["working_mib"] / evidently["working_mib"]
    same_dataset_verdict = engine["dataset_drifted"] == evidently["dataset_drifted"]
    print(f"columns compared: {columns} (engine {len(engine['columns'])}); same method: {methods_agree}/{columns}")
    print(f"max abs score difference: {max_difference:.3e} (target <= {SCORE_TOLERANCE:g})")
    print(f"column verdicts agree: {verdicts_agree}/{columns}; drifted columns: engine "
          f"{sum(c['drifted'] for c in engine['columns'].values())}, evidently "
          f"{sum(c['drifted'] for c in evidently['columns'].values())}")
    print(f"dataset verdict: engine {_verdict(engine['dataset_drifted'])} (share {engine['drift_share']:.3f}), "
          f"evidently {_verdict(evidently['dataset_drifted'])} (share {evidently['drift_share']:.3f})")
    print(f"{'':<10} {'wall s':>9} {'working MiB':>12} {'peak MiB':>9}")
    for name, figures in (("engine", engine), ("evidently", evidently)):
        print(f"{name:<10} {figures['seconds']:>9.2f} {figures['working_mib']:>12.1f} {figures['peak_mib']:>9.1f}")
    print(f"speed-up: {speedup:.1f}x (target >= {SPEEDUP_TARGET:g}x); engine working memory = "
          f"{memory_share:.3f} of evidently's (target <= {MEMORY_SHARE_TARGET:.3f})")
    met = (
        verdicts_agree == columns and same_dataset_verdict and max_difference <= SCORE_TOLERANCE
        and speedup >= SPEEDUP_TARGET and memory_share <= MEMORY_SHARE_TARGET
    )
    print(f"targets met: {'yes' if met else 'NO'}")
    return met


def _verdict(drifted: bool) -> str:
    return "DRIFT" if drifted else "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated row counts (default: 100000,1000000)")
    parser.add_argument("--child", choices=("engine", "evidently"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, int(args.rows))))
        return 0
    import evidently

    print(f"evidently {evidently.__version__}, pandas {pd.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    sys.path.insert(0, str(PROJECT_DIR))
    results = [stattest_agreement(), typed_agreement(), *(compare(int(rows)) for rows in args.rows.split(","))]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
