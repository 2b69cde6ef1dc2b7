"""`make local-up`'s demo model, against the servers it meets in the cluster: MLflow with the
platform's settings on a real PostgreSQL, its artifacts proxied into an S3 bucket (moto here, the
in-cluster object store there). The script runs as local-up runs it, as a process; what it prints
must be a model KServe can download from the bucket and a reference sample the drift job accepts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from components.platform.mlflow_server import ADMIN_USERNAME
from monitoring.drift_job.schema import check_schema
from tests.conftest import PROJECT_DIR
from tests.runtime.servers import MotoServer
from tests.runtime.test_mlflow_postgres import Postgres, Tracking, postgres, tracking_server  # noqa: F401  (postgres: the fixture)

pytestmark = pytest.mark.server

DEMO_MODEL = PROJECT_DIR / "scripts" / "local" / "demo_model.py"
BUCKET = "mlflow-artifacts"


@dataclass
class Platform:
    tracking: Tracking
    moto: MotoServer

    def script_env(self) -> dict[str, str]:
        return {
            **os.environ,
            **MotoServer.AWS_ENV,
            "MLFLOW_S3_ENDPOINT_URL": self.moto.url,
            "MLFLOW_TRACKING_USERNAME": ADMIN_USERNAME,
            "MLFLOW_TRACKING_PASSWORD": self.tracking.admin_password,
        }


@pytest.fixture(scope="module")
def platform(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:  # noqa: F811
    """MLflow proxying its artifacts into an S3 bucket, as the platform's server does."""
    workdir = tmp_path_factory.mktemp("platform")
    with MotoServer.start(workdir) as moto:
        moto.s3_client().create_bucket(Bucket=BUCKET)
        s3_env = {**MotoServer.AWS_ENV, "MLFLOW_S3_ENDPOINT_URL": moto.url}
        with tracking_server(postgres, workdir, f"s3://{BUCKET}", s3_env) as tracking:
            yield Platform(tracking, moto)


def run_demo_model(platform: Platform, *arguments: str) -> dict[str, str]:
    completed = subprocess.run(
        [sys.executable, str(DEMO_MODEL), "--tracking-uri", platform.tracking.url, *arguments],
        env=platform.script_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _s3_keys(platform: Platform, uri: str) -> list[str]:
    parts = urlsplit(uri)
    listing = platform.moto.s3_client().list_objects_v2(Bucket=parts.netloc, Prefix=parts.path.lstrip("/"))
    return [entry["Key"] for entry in listing.get("Contents", [])]


def test_first_and_second_version_land_in_the_bucket_with_their_reference_samples(platform: Platform, tmp_path: Path, monkeypatch):
    first = run_demo_model(platform)
    second = run_demo_model(platform, "--seed", "2", "--shift", "0.5")

    assert (first["registeredModel"], first["version"], second["version"]) == ("churn-classifier", "1", "2")
    assert first["referenceDataUri"] == "s3://mlflow-artifacts/reference/churn-classifier/v1.parquet"
    # KServe's storage initializer downloads the artifact URI straight from the bucket.
    for demo in (first, second):
        assert demo["artifactUri"].startswith("s3://mlflow-artifacts/")
        keys = _s3_keys(platform, demo["artifactUri"])
        assert any(key.endswith("/MLmodel") for key in keys), keys

    # Loaded from the bucket as the model server would, the model answers for the reference rows.
    for name, value in {**MotoServer.AWS_ENV, "MLFLOW_S3_ENDPOINT_URL": platform.moto.url}.items():
        monkeypatch.setenv(name, value)
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(first["artifactUri"], dst_path=str(tmp_path))
    parts = urlsplit(first["referenceDataUri"])
    body = platform.moto.s3_client().get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
    (tmp_path / "reference.parquet").write_bytes(body)
    reference = pd.read_parquet(tmp_path / "reference.parquet")
    features = reference[[c for c in reference.columns if c.startswith("input.")]].rename(columns=lambda c: c.removeprefix("input."))
    np.testing.assert_array_equal(np.asarray(model.predict(features)), reference["output.output-1"].to_numpy())

    # The drift job accepts it: payload column names, a prediction column, labels for performance.
    assert check_schema(reference, reference) == {
        "input.tenure_months": "numeric",
        "input.monthly_charges": "numeric",
        "input.support_calls": "numeric",
        "input.contract_months": "numeric",
        "output.output-1": "numeric",
    }
    assert set(reference["label"].unique()) == {0, 1}
    assert list(model.metadata.get_input_schema().input_names()) == list(features.columns)


def test_bad_arguments_exit_2_with_one_line():
    completed = subprocess.run(
        [sys.executable, str(DEMO_MODEL), "--tracking-uri", "http://127.0.0.1:1", "--shift", "3"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1] == "demo_model.py: error: --shift 3.0 is outside [0, 1]"
