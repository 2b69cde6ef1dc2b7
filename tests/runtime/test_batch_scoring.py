"""The batch scoring Job (`python -m batch`, configured by BATCH_* variables like its CronJob) on
real servers: a model registered in MLflow, input partitions in S3 (moto's server), metrics to a
Pushgateway. It scores every partition in chunks, writes the version and run id beside each
prediction, and a rerun writes nothing new. The 1M-row run with its memory figure is
benchmarks/batch_scoring.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from batch.push import PARTITIONS, ROWS, STATUS
from monitoring.drift_job.status import EXIT_OK, EXIT_SCHEMA_MISMATCH
from tests.conftest import PROJECT_DIR
from tests.runtime.batch_support import MODEL, parquet_bytes, register_model, scoring_rows
from tests.runtime.servers import MotoServer, PushgatewayServer

pytestmark = pytest.mark.server

BUCKET = "tables"
CHUNK_ROWS = 1000


@dataclass
class Scoring:
    moto: MotoServer
    gateway: PushgatewayServer
    tracking_uri: str
    run_id: str

    def put(self, key: str, frame: pd.DataFrame) -> None:
        # Row groups smaller than a chunk: the reader must still hand out chunk-sized batches.
        self.moto.s3_client().put_object(Bucket=BUCKET, Key=key, Body=parquet_bytes(frame, row_group_size=400))

    def objects(self, prefix: str) -> dict[str, tuple[str, object]]:
        listing = self.moto.s3_client().list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return {item["Key"]: (item["ETag"], item["LastModified"]) for item in listing}

    def read(self, key: str) -> pq.ParquetFile:
        return pq.ParquetFile(io.BytesIO(self.moto.s3_client().get_object(Bucket=BUCKET, Key=key)["Body"].read()))

    def run(self, input_prefix: str, output_prefix: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCH_", "MLFLOW_"))}
        env.update(
            MotoServer.AWS_ENV, AWS_ENDPOINT_URL=self.moto.url, MLFLOW_TRACKING_URI=self.tracking_uri,
            BATCH_MODEL=MODEL, BATCH_MODEL_VERSION="1", BATCH_INPUT=f"s3://{BUCKET}/{input_prefix}",
            BATCH_OUTPUT=f"s3://{BUCKET}/{output_prefix}", BATCH_PUSHGATEWAY=self.gateway.url, BATCH_CHUNK_ROWS=str(CHUNK_ROWS),
        )  # fmt: skip
        return subprocess.run([sys.executable, "-m", "batch"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300)

    def pushed(self, name: str) -> dict[frozenset, float]:
        found = {}
        for family in text_string_to_metric_families(self.gateway.metrics_text()):
            for sample in family.samples:
                if sample.name == name and sample.labels.get("model") == MODEL:
                    found[frozenset((k, v) for k, v in sample.labels.items() if k not in ("job", "instance", "model", "version"))] = sample.value
        return found


@pytest.fixture(scope="module")
def scoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scoring]:
    workdir = tmp_path_factory.mktemp("batch")
    tracking_uri, run_id = register_model(workdir)
    with MotoServer.start(workdir) as moto, PushgatewayServer.start(workdir) as gateway:
        moto.s3_client().create_bucket(Bucket=BUCKET)
        yield Scoring(moto, gateway, tracking_uri, run_id)


def test_partitions_are_scored_in_chunks_with_version_and_run_id(scoring: Scoring):
    """Two day partitions (one of two files) and a loose file: each is written as one Parquet file,
    one row group per chunk, every input row once with the model's own prediction."""
    import mlflow.pyfunc

    inputs = {
        "in/date=2026-11-30/a.parquet": scoring_rows(2500, seed=1),
        "in/date=2026-11-30/b.parquet": scoring_rows(700, seed=2),
        "in/date=2026-12-01/a.parquet": scoring_rows(1800, seed=3),
        "in/extra.parquet": scoring_rows(300, seed=4),
    }
    for key, frame in inputs.items():
        scoring.put(key, frame)
    run = scoring.run("in", "out")
    assert run.returncode == EXIT_OK, run.stderr[-3000:]
    assert sorted(scoring.objects("out/")) == sorted(
        f"out/{partition}/{name}" for partition in ("date=2026-11-30", "date=2026-12-01", "extra") for name in ("_SUCCESS", "scored.parquet")
    )
    scored = scoring.read("out/date=2026-11-30/scored.parquet")
    assert scored.metadata.num_row_groups == 4  # 3200 rows in chunks of 1000
    table = scored.read().to_pandas()
    expected = pd.concat([inputs["in/date=2026-11-30/a.parquet"], inputs["in/date=2026-11-30/b.parquet"]])
    assert sorted(table["transaction_id"]) == sorted(expected["transaction_id"])
    mlflow.set_tracking_uri(scoring.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    np.testing.assert_array_equal(table["prediction"].to_numpy(), model.predict(table[["amount", "age", "country"]]))
    assert set(table["model_version"]) == {"1"} and set(table["run_id"]) == {scoring.run_id}
    assert scoring.pushed(ROWS) == {frozenset(): 5300.0}
    assert scoring.pushed(PARTITIONS) == {frozenset({("outcome", o)}): n for o, n in (("scored", 3.0), ("skipped", 0.0), ("failed", 0.0))}


def test_a_rerun_writes_nothing_and_a_new_partition_alone_is_scored(scoring: Scoring):
    """Rerun over the same input: no object written or rewritten; a partition added later is the
    only one scored by the next run."""
    for day, seed in (("2026-11-28", 5), ("2026-11-29", 6)):
        scoring.put(f"again/date={day}/a.parquet", scoring_rows(1200, seed=seed))
    assert scoring.run("again", "again-out").returncode == EXIT_OK
    first = scoring.objects("again-out/")
    rerun = scoring.run("again", "again-out")
    assert rerun.returncode == EXIT_OK, rerun.stderr[-3000:]
    assert scoring.objects("again-out/") == first
    assert scoring.pushed(PARTITIONS)[frozenset({("outcome", "skipped")})] == 2.0 and scoring.pushed(ROWS) == {frozenset(): 0.0}
    scoring.put("again/date=2026-11-30/a.parquet", scoring_rows(500, seed=7))
    assert scoring.run("again", "again-out").returncode == EXIT_OK
    after = scoring.objects("again-out/")
    assert {k: v for k, v in after.items() if k in first} == first
    assert sorted(set(after) - set(first)) == ["again-out/date=2026-11-30/_SUCCESS", "again-out/date=2026-11-30/scored.parquet"]


def test_input_without_the_signature_columns_exits_4(scoring: Scoring):
    """A partition lacking a column the model needs: exit 4 naming it, status schema_mismatch, no marker."""
    scoring.put("bad/date=2026-12-01/a.parquet", scoring_rows(100, seed=8).drop(columns=["country"]))
    run = scoring.run("bad", "bad-out")
    assert run.returncode == EXIT_SCHEMA_MISMATCH and "['country']" in run.stderr
    assert scoring.pushed(STATUS)[frozenset({("status", "schema_mismatch")})] == 1.0
    assert scoring.objects("bad-out/") == {}
