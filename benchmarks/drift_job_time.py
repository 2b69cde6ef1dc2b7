"""What a drift CronJob run costs as a whole process, beside the drift computation alone, and what
the HTML report's pictures add to it.

A payload store is written the way the collector writes it (hourly Parquet partitions, 40 numeric
and 10 categorical `input.*` features plus `output.prediction`), with a reference sample beside
it, and a real Pushgateway (Debian's `prometheus-pushgateway`) is started. Then:

- whole process: `python -m monitoring.drift_job` as a subprocess, wall time from spawn to exit
  (interpreter start, imports, reading reference and window, drift, reports, push), median of
  ``--repeats``;
- the same phases timed one by one in this process: imports (a fresh interpreter importing the
  job's modules), read, compute (``compute_drift`` alone, the figure a compute-only benchmark
  shows), report (distributions + JSON/HTML) and push;
- the report's pictures: ``compute_drift`` with and without ``distributions=True`` plus rendering
  the page, for the 50 columns, as a share of the whole-process time.

Run with the runtime interpreter (pandas, pyarrow, scipy, prometheus_client; Debian's
prometheus-pushgateway on PATH or in /usr/bin):

    .venv-runtime/bin/python benchmarks/drift_job_time.py [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from monitoring.drift import compute_drift  # noqa: E402
from monitoring.drift_job.analysis import analyse  # noqa: E402
from monitoring.drift_job.config import load_config  # noqa: E402
from monitoring.drift_job.push import push_results  # noqa: E402
from monitoring.drift_job.reference import load_reference  # noqa: E402
from monitoring.drift_job.report import write_report  # noqa: E402
from monitoring.drift_job.storage import Location  # noqa: E402
from monitoring.drift_job.window import Window, read_window  # noqa: E402
from tests.runtime.servers import PushgatewayServer  # noqa: E402

MODEL, VERSION = "bench", "v1"
NUMERIC, CATEGORICAL = 40, 10
JOB_MODULES = "import monitoring.drift_job.cli, monitoring.drift_job.job"


def features(rows: int, rng: np.random.Generator, shifted: bool) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for index in range(NUMERIC):
        step = 0.05 * (index % 5) if shifted else 0.0
        columns[f"input.n{index:02d}"] = rng.normal(step, 1.0, rows)
    for index in range(CATEGORICAL):
        count = 3 + 2 * index
        weights = np.linspace(1.0, 2.0, count)
        weights = weights[::-1] if shifted and index % 3 == 0 else weights
        columns[f"input.c{index}"] = np.array([f"v{k}" for k in range(count)], dtype=object)[
            rng.choice(count, rows, p=weights / weights.sum())
        ]
    columns["output.prediction"] = rng.integers(0, 2, rows).astype(np.float64)
    return pd.DataFrame(columns)


def write_store(root: Path, rows: int, end: datetime) -> Path:
    """The window as collector partitions (two hours), and the reference sample; returns the reference path."""
    rng = np.random.default_rng(20261201)
    window = features(rows, rng, shifted=True)
    offsets = np.linspace(1, 100 * 60, rows)
    window.insert(0, "timestamp", pd.to_datetime([end - timedelta(seconds=float(s)) for s in offsets], utc=True))
    window.insert(0, "request_id", [f"r{i}" for i in range(rows)])
    for hour, part in window.groupby(window["timestamp"].dt.floor("h")):
        folder = root / "store" / MODEL / VERSION / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        part.assign(model=MODEL, version=VERSION).to_parquet(folder / "part.parquet", index=False)
    reference = root / "reference.parquet"
    features(rows // 5, rng, shifted=False).to_parquet(reference, index=False)
    return reference


def timed(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="window rows (reference: a fifth)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drift-job-bench-") as folder, PushgatewayServer.start(Path(folder)) as gateway:
        root = Path(folder)
        now = datetime.now(timezone.utc)
        reference_path = write_store(root, args.rows, now)
        argv = [
            "--model", MODEL, "--model-version", VERSION, "--window-hours", "2", "--reference", str(reference_path),
            "--payload-root", str(root / "store"), "--pushgateway", gateway.url, "--min-rows", "10",
        ]  # fmt: skip
        process_seconds = []
        for _ in range(args.repeats):
            _, seconds = timed(subprocess.run, [sys.executable, "-m", "monitoring.drift_job", *argv], cwd=PROJECT_DIR, check=True, capture_output=True)
            process_seconds.append(seconds)
        import_seconds = statistics.median(
            timed(subprocess.run, [sys.executable, "-c", JOB_MODULES], cwd=PROJECT_DIR, check=True)[1] for _ in range(args.repeats)
        )
        bare_seconds = statistics.median(timed(subprocess.run, [sys.executable, "-c", "pass"], check=True)[1] for _ in range(args.repeats))

        config = load_config(argv, {})
        window = Window.ending(now, config.window_hours)
        reference, read_reference = timed(load_reference, config.reference)
        current, read_current = timed(read_window, Location.of(config.payload_root), MODEL, VERSION, window)
        columns = [c for c in reference.columns if c.startswith("input.")]
        _, compute_only = timed(compute_drift, reference[columns], current[columns])
        _, compute_drawn = timed(compute_drift, reference[columns], current[columns], distributions=True)
        result, analyse_seconds = timed(analyse, config, reference, current, None, window)
        written, report_seconds = timed(write_report, str(root / "reports"), result, now)
        _, push_seconds = timed(push_results, gateway.url, result, now)
        page_kib = Path(written.html_uri.removeprefix("file://")).stat().st_size / 1024

    whole = statistics.median(process_seconds)
    pictures = compute_drawn - compute_only + report_seconds
    print(f"drift job, {args.rows:,} window rows x {NUMERIC + CATEGORICAL} features + prediction, reference {args.rows // 5:,} rows")
    print(f"whole process (spawn to exit), median of {args.repeats}: {whole:8.3f} s   runs: {', '.join(f'{s:.3f}' for s in process_seconds)}")
    print(f"  python start                              {bare_seconds:8.3f} s")
    print(f"  imports (python -c 'import the job')      {import_seconds - bare_seconds:8.3f} s")
    print(f"  read reference + window                   {read_reference + read_current:8.3f} s")
    print(f"  compute_drift alone (compute-only)        {compute_only:8.3f} s   = {compute_only / whole:.1%} of the process")
    print(f"  analyse (features, prediction, pictures)  {analyse_seconds:8.3f} s")
    print(f"  reports (JSON + HTML)                     {report_seconds:8.3f} s")
    print(f"  push to the Pushgateway                   {push_seconds:8.3f} s")
    print(f"whole process / compute-only: {whole / compute_only:.1f}x")
    print(
        f"report pictures for {NUMERIC + CATEGORICAL} columns: distributions {compute_drawn - compute_only:+.3f} s + HTML/JSON "
        f"{report_seconds:.3f} s = {pictures:.3f} s, {pictures / whole:.1%} of the job's run time "
        f"(page {page_kib:.0f} KiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
