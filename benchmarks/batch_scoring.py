"""Batch scoring of 1M rows from an S3 store by a registered model; prints rows/s and peak memory.

The rows (4 day partitions of 250k) go to moto's S3 server, the model (the test's logistic
regression on amount, age, country) into an MLflow registry, and `python -m batch` runs as its
CronJob would, in a child process whose peak RSS (its VmHWM) is the figure. The same rows loaded
whole as a DataFrame (pyarrow and pandas only, no MLflow) are measured beside it, for scale.

Bound (issue 15): peak RSS stays under 450 MiB + 1 KiB per chunk row, whatever the input size: the
scorer holds one chunk (and its prediction) at a time. The 450 MiB are the interpreter with MLflow,
scikit-learn and pyarrow's S3 client loaded (measured: 427 MiB at 10k-row chunks, 439 at 50k, 503
at 200k, for 1M rows).

    .venv-runtime/bin/python benchmarks/batch_scoring.py [--rows 1000000] [--chunk-rows 50000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from tests.runtime.batch_support import MODEL, parquet_bytes, register_model, scoring_rows  # noqa: E402
from tests.runtime.servers import MotoServer, PushgatewayServer  # noqa: E402

PARTITIONS = 4
BASE_MIB, PER_CHUNK_ROW_KIB = 450, 1


def _child_peak_mib(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(seconds, peak RSS MiB, exit code, stderr) of one child. The peak is the kernel's high-water
    mark of the child's own address space (VmHWM, reset by exec), read until it exits: ru_maxrss
    would report this process's size, which a forked child inherits."""
    started, peak_kib = time.perf_counter(), 0
    with tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        while child.poll() is None:
            try:
                status = Path(f"/proc/{child.pid}/status").read_text()
                peak_kib = max(peak_kib, int(status.split("VmHWM:", 1)[1].split()[0]))
            except (OSError, IndexError):
                pass  # exiting between poll() and the read
            time.sleep(0.02)
        stderr.seek(0)
        return time.perf_counter() - started, peak_kib / 1024, child.returncode, stderr.read().decode(errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    tracking_uri, _ = register_model(workdir)
    with MotoServer.start(workdir) as moto, PushgatewayServer.start(workdir) as gateway:
        s3 = moto.s3_client()
        s3.create_bucket(Bucket="tables")
        for day in range(PARTITIONS):
            frame = scoring_rows(options.rows // PARTITIONS, seed=day)
            s3.put_object(Bucket="tables", Key=f"in/date=2026-11-{day + 1:02d}/part.parquet", Body=parquet_bytes(frame))
        env = {**os.environ, **MotoServer.AWS_ENV, "AWS_ENDPOINT_URL": moto.url, "MLFLOW_TRACKING_URI": tracking_uri,
               "PYTHONPATH": str(PROJECT_DIR), "BATCH_MODEL": MODEL, "BATCH_MODEL_VERSION": "1", "BATCH_INPUT": "s3://tables/in",
               "BATCH_OUTPUT": "s3://tables/out", "BATCH_PUSHGATEWAY": gateway.url, "BATCH_CHUNK_ROWS": str(options.chunk_rows)}  # fmt: skip
        seconds, peak, code, stderr = _child_peak_mib([sys.executable, "-m", "batch"], env)
        if code != 0:
            print(stderr[-3000:], file=sys.stderr)
            return 1
        rates = [line for line in gateway.metrics_text().splitlines() if line.startswith("mlops_batch_rows_per_second{")]
        rows_per_second = float(rates[0].rsplit(" ", 1)[1])
        whole_code = (
            "import pyarrow.dataset as ds, pyarrow.fs as fs;"
            f"f = fs.S3FileSystem(endpoint_override={moto.url!r}, access_key='testing', secret_key='testing', region='us-east-1');"
            "t = ds.dataset('tables/in', filesystem=f, format='parquet').to_table().to_pandas()"
        )
        _, whole_peak, _, _ = _child_peak_mib([sys.executable, "-c", whole_code], env)
    bound = BASE_MIB + PER_CHUNK_ROW_KIB * options.chunk_rows / 1024
    print(f"rows {options.rows}, chunk {options.chunk_rows} rows, {PARTITIONS} partitions")
    print(f"scoring: {rows_per_second:,.0f} rows/s (model time), job {seconds:.1f} s wall incl. imports and model load")
    print(f"peak RSS of the job: {peak:.0f} MiB (bound {bound:.0f} MiB: {'within' if peak <= bound else 'EXCEEDED'})")
    print(f"input loaded whole as a DataFrame (reference): {whole_peak:.0f} MiB peak")
    return 0 if peak <= bound else 1


if __name__ == "__main__":
    sys.exit(main())
