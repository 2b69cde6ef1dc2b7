"""Issue 15's loop, end to end on real servers: drifted payloads in S3 (moto's server) -> the drift
job (a process, configured by DRIFT_* variables like its CronJob) calls the signed retraining webhook
-> the training entrypoint (a process, configured by the TRAINING_* variables the rendered Job sets)
trains on the payloads joined with their labels, compares with the champion on MLflow (on
PostgreSQL, the platform's server settings) and registers a challenger -> `mlops models resolve
--alias challenger --canary 10` writes the canary into a copy of the dev stack -> `mlops render`
(in the IaC virtualenv next to this one) renders the canary InferenceService. A second candidate,
from a trainer that ignores the features, is refused and the challenger stays.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from components.platform.mlflow_server import ADMIN_USERNAME
from mlops.stackops import models as models_cli
from tests.conftest import PROJECT_DIR
from tests.runtime.payload_samples import labels_for, reference_frame, window_frame, write_partitions
from tests.runtime.servers import MotoServer, PushgatewayServer
from tests.runtime.signed_receiver import SignedReceiver
from tests.runtime.test_mlflow_postgres import Tracking, postgres, tracking  # noqa: F401 (fixtures)
from training.cli import EXIT_REFUSED

pytestmark = pytest.mark.server

MODEL = "churn-classifier"  # the dev stack's model, so `mlops models resolve` finds it
BUCKET = "mlops"
PAYLOAD_ROOT = f"s3://{BUCKET}/payloads"
REFERENCE_URI = f"s3://{BUCKET}/reference/{MODEL}.parquet"
LABELS_URI = f"s3://{BUCKET}/labels/{MODEL}.parquet"
SECRET = "webhook-secret-for-the-test"
IAC_PYTHON = Path(sys.prefix).parent / ".venv" / "bin" / "python"


class MajorityClassTrainer:
    """A trainer that ignores the features: the worse candidate (and proof that any class with the
    Trainer interface plugs in through TRAINING_TRAINER)."""

    def __init__(self, task: str, seed: int) -> None:
        from sklearn.dummy import DummyClassifier

        self.model = DummyClassifier(strategy="most_frequent")

    def fit(self, features: pd.DataFrame, target: pd.Series) -> None:
        self.model.fit(features, target)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.model.predict(features)

    def log_model(self, name: str, signature, input_example: pd.DataFrame) -> str:
        import mlflow.sklearn

        return mlflow.sklearn.log_model(self.model, name=name, signature=signature, input_example=input_example).model_uri


@dataclass
class Loop:
    moto: MotoServer
    gateway: PushgatewayServer
    tracking: Tracking
    receiver: SignedReceiver
    workdir: Path

    def env(self, **variables: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFT_", "TRAINING_", "MLFLOW_"))}
        env.update(MotoServer.AWS_ENV, AWS_ENDPOINT_URL=self.moto.url, MLFLOW_TRACKING_URI=self.tracking.url,
                   MLFLOW_TRACKING_USERNAME=ADMIN_USERNAME, MLFLOW_TRACKING_PASSWORD=self.tracking.admin_password)  # fmt: skip
        env.update(variables)
        return env

    def run(self, module: str, **variables: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", module], cwd=PROJECT_DIR, env=self.env(**variables), capture_output=True, text=True, timeout=300)

    def train(self, **variables: str) -> tuple[subprocess.CompletedProcess[str], dict]:
        summary = self.workdir / f"summary-{len(list(self.workdir.glob('summary-*')))}.json"
        settings = {
            "TRAINING_MODEL": MODEL, "TRAINING_TASK": "classification", "TRAINING_METRIC": "accuracy", "TRAINING_MARGIN": "0.02",
            "TRAINING_DATA": REFERENCE_URI, "TRAINING_PAYLOAD_ROOT": PAYLOAD_ROOT, "TRAINING_LABELS": LABELS_URI,
            "TRAINING_SERVED_VERSION": "1", "TRAINING_SUMMARY_PATH": str(summary),
        }  # fmt: skip
        run = self.run("training", **{**settings, **variables})
        return run, json.loads(summary.read_text()) if summary.exists() else {}

    def client(self):
        import mlflow

        os.environ.update({k: v for k, v in self.env().items() if k.startswith("MLFLOW_")})
        return mlflow.MlflowClient(self.tracking.url)


def _upload(moto: MotoServer, key: str, frame: pd.DataFrame) -> None:
    path = Path(tempfile.mkstemp(suffix=".parquet")[1])
    frame.to_parquet(path, index=False)
    moto.s3_client().upload_file(str(path), BUCKET, key)
    path.unlink()


@pytest.fixture(scope="module")
def loop(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:  # noqa: F811
    workdir = tmp_path_factory.mktemp("training-loop")
    receiver = SignedReceiver(SECRET)
    with MotoServer.start(workdir) as moto, PushgatewayServer.start(workdir) as gateway:
        moto.s3_client().create_bucket(Bucket=BUCKET)
        # The collector writes JSON numbers as doubles; the reference sample is stored alike.
        _upload(moto, f"reference/{MODEL}.parquet", reference_frame(rows=1500).astype({"input.age": float}))
        window = window_frame(600, datetime.now(timezone.utc), seed=21, shifted=True, model=MODEL)
        for path in write_partitions(workdir / "store", window):
            _upload(moto, f"payloads/{path.relative_to(workdir / 'store').as_posix()}", pd.read_parquet(path))
        _upload(moto, f"labels/{MODEL}.parquet", labels_for(window, accuracy=0.9))
        try:
            yield Loop(moto, gateway, tracking, receiver, workdir)
        finally:
            receiver.close()


@pytest.fixture(scope="module")
def champion(loop: Loop) -> str:
    """Version 1, trained by the same entrypoint on the reference sample alone, made champion."""
    run, summary = loop.train(TRAINING_PAYLOAD_ROOT="", TRAINING_LABELS="", TRAINING_SERVED_VERSION="", TRAINING_TRIGGER="initial")
    assert run.returncode == 0, run.stderr[-3000:]
    assert summary["champion"] is None and summary["version"] == "1"
    loop.client().set_registered_model_alias(MODEL, "champion", "1")
    return "1"


@pytest.fixture(scope="module")
def drift_trigger(loop: Loop, champion: str) -> dict:
    """The drift job on the drifted window; its signed call is what the training Job receives."""
    run = loop.run(
        "monitoring.drift_job",
        DRIFT_MODEL=MODEL, DRIFT_MODEL_VERSION="v1", DRIFT_REFERENCE=REFERENCE_URI, DRIFT_PAYLOAD_ROOT=PAYLOAD_ROOT,
        DRIFT_WINDOW_HOURS="2", DRIFT_PUSHGATEWAY=loop.gateway.url, DRIFT_RETRAIN_POLICY="on_dataset_drift",
        DRIFT_RETRAIN_WEBHOOK=loop.receiver.url, DRIFT_RETRAIN_WEBHOOK_SECRET=SECRET,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(loop.receiver.accepted) == 1 and loop.receiver.refused == []
    return loop.receiver.accepted[0].payload


@pytest.fixture(scope="module")
def accepted(loop: Loop, drift_trigger: dict) -> tuple[subprocess.CompletedProcess[str], dict]:
    return loop.train(TRAINING_TRIGGER=drift_trigger["idempotencyKey"])


def test_drift_calls_the_signed_webhook_with_an_idempotency_key(drift_trigger: dict):
    """The dataset drifted, so the receiver got one verified call naming the model, version and window."""
    assert (drift_trigger["model"], drift_trigger["version"], drift_trigger["drift"]["datasetDrifted"]) == (MODEL, "v1", True)
    assert drift_trigger["idempotencyKey"].startswith(f"{MODEL}/v1/")


def test_a_candidate_not_worse_than_the_champion_becomes_the_challenger(loop: Loop, accepted):
    """Trained on reference + labelled payloads, scored against version 1 on the same held-out rows:
    registered as version 2 with alias challenger; the run records metrics, trigger and outcome."""
    run, summary = accepted
    assert run.returncode == 0, run.stderr[-3000:]
    assert (summary["outcome"], summary["champion_version"], summary["version"]) == ("registered", "1", "2")
    assert summary["candidate"] >= summary["champion"] - 0.02 and summary["champion"] > 0.7
    client = loop.client()
    assert client.get_model_version_by_alias(MODEL, "challenger").version == "2"
    training_run = client.get_run(summary["run_id"])
    assert training_run.data.tags["mlops.outcome"] == "registered"
    assert training_run.data.tags["mlops.trigger"].startswith(f"{MODEL}/v1/")
    assert set(training_run.data.metrics) == {"candidate_accuracy", "champion_accuracy"}
    assert summary["train_rows"] + summary["holdout_rows"] == 1500 + 600


def test_a_worse_candidate_is_refused_and_the_challenger_stays(loop: Loop, accepted):
    """A trainer that predicts the majority class scores below the champion by more than the margin:
    exit 9, no new version, the reason on the run."""
    run, summary = loop.train(TRAINING_TRAINER=f"{__name__}:MajorityClassTrainer", TRAINING_TRIGGER="worse")
    assert run.returncode == EXIT_REFUSED, run.stderr[-3000:]
    assert summary["outcome"] == "refused" and summary["version"] is None
    client = loop.client()
    assert client.get_model_version_by_alias(MODEL, "challenger").version == "2"
    assert [v.version for v in client.search_model_versions(f"name='{MODEL}'")] == ["2", "1"]
    tags = client.get_run(summary["run_id"]).data.tags
    assert tags["mlops.outcome"] == "refused" and "worse than the champion" in tags["mlops.reason"]


def test_the_challenger_goes_out_as_a_rendered_canary(loop: Loop, accepted, tmp_path: Path):
    """`mlops models resolve --alias challenger --canary 10`, then `mlops render`: the InferenceService
    serves version 2's artifact to 10 % of the traffic."""
    assert accepted[0].returncode == 0
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    loop.client()  # credentials for the registry calls
    parser = argparse.ArgumentParser()
    models_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["models", "resolve", MODEL, "--stack", "dev", "--tracking-uri", loop.tracking.url, "--alias", "challenger", "--canary", "10",
         "--artifacts-destination", (loop.tracking.log.parent / "artifacts").as_uri(), "--project-dir", str(tmp_path)]
    )  # fmt: skip
    assert args.func(args) == 0
    declared = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())["config"]["mlops:models"][0]
    assert declared["model"]["resolvedVersion"] == "2" and declared["canary"]["trafficPercent"] == 10
    render = subprocess.run(
        [str(IAC_PYTHON), "-m", "mlops", "render", "--stack", "dev", "--project-dir", str(tmp_path), "--out", str(tmp_path / "render")],
        cwd=PROJECT_DIR, env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert render.returncode == 0, render.stderr[-3000:]
    services = [
        document
        for path in (tmp_path / "render" / "manifests").rglob("*")
        if path.is_file()
        for document in yaml.safe_load_all(path.read_text())
        if isinstance(document, dict) and document.get("kind") == "InferenceService"
    ]
    [service] = [s for s in services if s["metadata"]["name"] == MODEL]
    predictor = service["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["model"]["storageUri"] == declared["model"]["artifactUri"]
