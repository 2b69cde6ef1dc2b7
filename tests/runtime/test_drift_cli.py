"""`mlops drift` on small generated CSV and Parquet files: the text and JSON reports, exit codes,
and the clear errors (exit 2) for input that cannot be compared."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring.drift import cli
from monitoring.drift.io import read_dataset

PROJECT_DIR = Path(__file__).resolve().parents[2]


def window(rows: int, shift: float, seed: int) -> pd.DataFrame:
    """Features of a small model: two numeric, one categorical, plus an id and a timestamp."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "request_id": [f"req-{seed}-{i}" for i in range(rows)],
            "age": rng.normal(40 + 15 * shift, 10, rows),
            "income": rng.lognormal(10, 0.5, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.6 - 0.4 * shift, 0.3, 0.1 + 0.4 * shift]),
        }
    )


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    """Reference, an unchanged window and a drifted window, as CSV and Parquet."""
    paths = {}
    for name, frame in (
        ("reference", window(400, 0.0, 1)),
        ("same", window(400, 0.0, 2)),
        ("drifted", window(400, 1.0, 3)),
    ):
        paths[f"{name}.csv"] = tmp_path / f"{name}.csv"
        paths[f"{name}.parquet"] = tmp_path / f"{name}.parquet"
        frame.to_csv(paths[f"{name}.csv"], index=False)
        frame.to_parquet(paths[f"{name}.parquet"], index=False)
    return paths


def run(*argv: str | Path) -> int:
    return cli.main([str(arg) for arg in argv])


def test_text_report_shows_each_column_and_the_dataset_verdict(files, capsys) -> None:
    """One line per column with type, method, score, threshold and verdict (the id column, all
    values distinct, is text, as Evidently types it); the dataset verdict."""
    code = run("--reference", files["reference.csv"], "--current", files["drifted.csv"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"reference: {files['reference.csv']}"
    header = next(line for line in lines if line.startswith("column"))
    assert header.split() == ["column", "type", "method", "score", "threshold", "verdict"]
    age = next(line for line in lines if line.startswith("age "))
    assert "num" in age and "K-S p_value (ks)" in age and age.split()[-2:] == ["0.05", "DRIFT"]
    plan = next(line for line in lines if line.startswith("plan "))
    assert "cat" in plan and "chi-square p_value (chisquare)" in plan and plan.endswith("DRIFT")
    request_id = next(line for line in lines if line.startswith("request_id "))
    assert "text" in request_id and "(perc_text_content_drift)" in request_id and request_id.endswith(" ok")
    assert lines[-1].startswith("dataset: DRIFT DETECTED: ") and "2 of 4 columns drifted" in lines[-1]


def test_text_report_of_an_unchanged_window_says_no_drift(files, capsys) -> None:
    """A window drawn from the same distribution: no dataset drift."""
    assert run("--reference", files["reference.parquet"], "--current", files["same.parquet"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("dataset: no drift: ") and "< threshold 0.5" in last


def test_json_report_on_parquet_files(files, capsys) -> None:
    """--format json prints the report's dict with the two paths."""
    code = run("--reference", files["reference.parquet"], "--current", files["drifted.parquet"], "--format", "json")
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["reference"] == str(files["reference.parquet"])
    assert {c["column"]: (c["column_type"], c["method"], c["drifted"]) for c in document["columns"]} == {
        "age": ("num", "ks", True),
        "income": ("num", "ks", False),
        "plan": ("cat", "chisquare", True),
        # Ids share their words ("req", the row number) in both windows: the domain classifier cannot tell them apart.
        "request_id": ("text", "perc_text_content_drift", False),
    }
    assert (document["number_of_drifted_columns"], document["dataset_drifted"]) == (2, True)
    assert document["skipped"] == []


def test_columns_and_drift_share_threshold_options(files, capsys) -> None:
    """--columns limits the comparison; --drift-share-threshold sets the dataset rule."""
    argv = ["--reference", files["reference.csv"], "--current", files["drifted.csv"], "--format", "json"]
    run(*argv, "--columns", "income,plan", "--drift-share-threshold", "0.75")
    document = json.loads(capsys.readouterr().out)
    assert [c["column"] for c in document["columns"]] == ["income", "plan"]
    assert (document["drift_share"], document["drift_share_threshold"], document["dataset_drifted"]) == (0.5, 0.75, False)


def test_fail_on_drift_sets_exit_status_one_only_when_the_dataset_drifts(files, capsys) -> None:
    """With --fail-on-drift a drifted window exits 1 and an unchanged one 0."""
    assert run("--reference", files["reference.csv"], "--current", files["drifted.csv"], "--fail-on-drift") == 1
    assert run("--reference", files["reference.csv"], "--current", files["same.csv"], "--fail-on-drift") == 0


def test_a_directory_of_parquet_files_is_one_dataset_without_partition_columns(files, tmp_path, capsys) -> None:
    """The payload store's date=/hour= folders are read as one window; they do not become columns."""
    store = tmp_path / "store" / "model" / "v1"
    drifted = pd.read_parquet(files["drifted.parquet"])
    for hour, part in enumerate((drifted.iloc[:150], drifted.iloc[150:])):
        folder = store / "date=2024-05-01" / f"hour={hour:02d}"
        folder.mkdir(parents=True)
        part.to_parquet(folder / f"part-{hour}.parquet", index=False)
    (store / "_SUCCESS").write_text("")
    assert read_dataset(store).shape == (400, 4)
    assert run("--reference", files["reference.parquet"], "--current", store, "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["number_of_drifted_columns"] == 2


def test_missing_file_exits_2_with_the_path(files, tmp_path, capsys) -> None:
    """A path with nothing behind it is named on stderr."""
    missing = tmp_path / "nope.parquet"
    assert run("--reference", files["reference.csv"], "--current", missing) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"mlops drift: error: no file or directory at {missing}"


def test_schema_mismatch_exits_2_naming_the_columns(files, tmp_path, capsys) -> None:
    """A current window that lost a column and retyped another is refused, not compared."""
    changed = pd.read_csv(files["drifted.csv"]).drop(columns=["income"]).assign(age=lambda f: f["age"].astype(str))
    changed.to_csv(tmp_path / "changed.csv", index=False)
    changed_parquet = tmp_path / "changed.parquet"
    changed.to_parquet(changed_parquet, index=False)
    assert run("--reference", files["reference.parquet"], "--current", changed_parquet) == 2
    err = capsys.readouterr().err
    assert "columns missing from current: ['income']" in err
    assert "'age' is numeric in reference but string in current" in err


def test_empty_window_and_unreadable_files_exit_2(files, tmp_path, capsys) -> None:
    """An empty current file, a file of an unknown kind and a directory without Parquet are refused."""
    pd.read_csv(files["drifted.csv"]).iloc[0:0].to_parquet(tmp_path / "empty.parquet", index=False)
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / "nothing").mkdir()
    cases = {
        tmp_path / "empty.parquet": "the current data has no rows",
        tmp_path / "data.json": "suffix '.json' is not one of ['.parquet', '.pq', '.csv']",
        tmp_path / "nothing": "holds no Parquet files",
    }
    for current, message in cases.items():
        assert run("--reference", files["reference.parquet"], "--current", current) == 2
        assert message in capsys.readouterr().err


def test_bad_options_are_usage_errors(files, capsys) -> None:
    """argparse refuses a drift share outside (0, 1] and an unknown format with status 2."""
    for extra in (["--drift-share-threshold", "0"], ["--format", "pdf"]):
        with pytest.raises(SystemExit) as raised:
            run("--reference", files["reference.csv"], "--current", files["same.csv"], *extra)
        assert raised.value.code == 2
    assert "expected a number in (0, 1], got 0" in capsys.readouterr().err


def test_register_adds_the_drift_subcommand(files, capsys) -> None:
    """The mlops CLI can mount the same command as a subcommand whose handler returns the status."""
    parser = argparse.ArgumentParser(prog="mlops")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["drift", "--reference", str(files["reference.csv"]), "--current", str(files["same.csv"])])
    assert args.func(args) == 0
    assert "dataset: no drift" in capsys.readouterr().out


def test_module_runs_as_a_script(files) -> None:
    """`python -m monitoring.drift.cli` is the same command, for images without the mlops CLI."""
    completed = subprocess.run(
        [sys.executable, "-m", "monitoring.drift.cli", "--reference", str(files["reference.csv"]),
         "--current", str(files["drifted.csv"]), "--fail-on-drift"],
        cwd=PROJECT_DIR, capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "dataset: DRIFT DETECTED" in completed.stdout


def test_column_type_option_compares_a_column_evidently_leaves_out(tmp_path, capsys) -> None:
    """An unsigned column is skipped, with the option that compares it; --column-type compares it."""
    frames = [window(300, shift, seed).assign(visits=lambda f: (f["age"] // 2).astype("uint16")) for shift, seed in ((0.0, 1), (1.0, 3))]
    for name, frame in zip(("reference", "current"), frames):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    argv = ["--reference", tmp_path / "reference.parquet", "--current", tmp_path / "current.parquet", "--format", "json"]
    run(*argv)
    assert json.loads(capsys.readouterr().out)["skipped"][0]["reason"].endswith("declare its type to compare it (column_types, --column-type)")
    run(*argv, "--column-type", "visits=num")
    visits = next(c for c in json.loads(capsys.readouterr().out)["columns"] if c["column"] == "visits")
    assert (visits["column_type"], visits["method"], visits["drifted"]) == ("num", "ks", True)
