"""Issue 15's loop, end to end on real servers: drifted payloads in S3 (moto's server) -> the drift
job (a process, configured by DRIFT_* variables like its CronJob) calls the signed retraining webhook
-> the training entrypoint (a process, with the environment of the Job the dev stack renders for
churn-classifier, made from its template as the drift job makes it; only the cluster addresses and
Secret values are swapped for the test servers') trains on the payloads joined with their labels, compares with the champion on MLflow (on
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
from monitoring.drift_job.retrain import job_from_template
from tests.conftest import PROJECT_DIR
from tests.runtime.payload_samples import labels_for, reference_frame, window_frame, write_partitions
from tests.runtime.servers import MotoServer, PushgatewayServer
from tests.runtime.signed_receiver import SignedReceiver
from tests.runtime.test_mlflow_postgres import Tracking, postgres, tracking  # noqa: F401 (fixtures)
from training.cli import EXIT_REFUSED

pytestmark = pytest.mark.server

MODEL = "churn-classifier"  # the dev stack's model, so `mlops models resolve` finds it
# Store-relative, as a stack declares them: the render makes them URIs in the dev stack's artifact bucket.
REFERENCE_PATH = f"reference/{MODEL}.parquet"
LABELS_PATH = f"labels/{MODEL}.parquet"
SECRET = "webhook-secret-for-the-test"
IAC_PYTHON = Path(sys.prefix).parent / ".venv" / "bin" / "python"
# The dev stack's churn-classifier, trained on this test's data and its labelled payloads, with the
# MLflow credentials from a Secret as a deployment declares them.
STACK_OVERRIDES = {
    "mlops:models[0].retraining.job.dataUri": REFERENCE_PATH,
    "mlops:models[0].monitoring.labelsUri": LABELS_PATH,
    "mlops:models[0].retraining.job.secretEnv": json.dumps(
        [{"name": "MLFLOW_TRACKING_USERNAME", "secret": "mlflow-training", "key": "username"},
         {"name": "MLFLOW_TRACKING_PASSWORD", "secret": "mlflow-training", "key": "password"}]
    ),
}  # fmt: skip


def render_dev(project: Path, out: Path, overrides: dict[str, str]) -> Path:
    """`mlops render` of `project`'s dev stack in the IaC virtualenv; the manifests directory."""
    config = [argument for key, value in overrides.items() for argument in ("--config", f"{key}={value}")]
    render = subprocess.run(
        [str(IAC_PYTHON), "-m", "mlops", "render", "--stack", "dev", "--project-dir", str(project), "--out", str(out), *config],
        cwd=PROJECT_DIR, env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert render.returncode == 0, render.stderr[-3000:]
    return out / "manifests"


def rendered(manifests: Path, kind: str, name: str) -> dict:
    for path in manifests.rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == kind and document["metadata"]["name"] == name:
                return document
    raise AssertionError(f"no {kind} {name} under {manifests}")


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
    job_template: dict

    @property
    def payload_root(self) -> str:
        return self.job_env("key")["TRAINING_PAYLOAD_ROOT"]

    @property
    def reference_uri(self) -> str:
        return self.job_env("key")["TRAINING_DATA"]

    @property
    def artifact_bucket(self) -> str:
        """The dev stack's artifact bucket: where its MLflow server keeps artifacts (--artifacts-destination)."""
        return self.reference_uri.removeprefix("s3://").split("/", 1)[0]

    def job_env(self, trigger: str) -> dict[str, str]:
        """The training container's environment of the Job the drift job creates for `trigger`, with
        in-cluster addresses and Secret values replaced by the test servers'."""
        secrets = {"AWS_ACCESS_KEY_ID": MotoServer.AWS_ENV["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": MotoServer.AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                   "MLFLOW_TRACKING_USERNAME": ADMIN_USERNAME, "MLFLOW_TRACKING_PASSWORD": self.tracking.admin_password}  # fmt: skip
        cluster = {"MLFLOW_TRACKING_URI": self.tracking.url, "AWS_ENDPOINT_URL": self.moto.url}
        (container,) = job_from_template(self.job_template, trigger)["spec"]["template"]["spec"]["containers"]
        return {item["name"]: cluster.get(item["name"]) or secrets.get(item["name"]) or item["value"] for item in container["env"]}

    def env(self, **variables: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFT_", "TRAINING_", "MLFLOW_"))}
        env.update(MotoServer.AWS_ENV, AWS_ENDPOINT_URL=self.moto.url, MLFLOW_TRACKING_URI=self.tracking.url,
                   MLFLOW_TRACKING_USERNAME=ADMIN_USERNAME, MLFLOW_TRACKING_PASSWORD=self.tracking.admin_password)  # fmt: skip
        env.update(variables)
        return env

    def run(self, module: str, **variables: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", module], cwd=PROJECT_DIR, env=self.env(**variables), capture_output=True, text=True, timeout=300)

    def train(self, trigger: str, **variables: str) -> tuple[subprocess.CompletedProcess[str], dict]:
        summary = self.workdir / f"summary-{len(list(self.workdir.glob('summary-*')))}.json"
        run = self.run("training", **{**self.job_env(trigger), "TRAINING_SUMMARY_PATH": str(summary), **variables})
        return run, json.loads(summary.read_text()) if summary.exists() else {}

    def client(self):
        import mlflow

        os.environ.update({k: v for k, v in self.env().items() if k.startswith("MLFLOW_")})
        return mlflow.MlflowClient(self.tracking.url)


def _upload(moto: MotoServer, bucket: str, key: str, frame: pd.DataFrame) -> None:
    path = Path(tempfile.mkstemp(suffix=".parquet")[1])
    frame.to_parquet(path, index=False)
    moto.s3_client().upload_file(str(path), bucket, key)
    path.unlink()


@pytest.fixture(scope="module")
def loop(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:  # noqa: F811
    workdir = tmp_path_factory.mktemp("training-loop")
    manifests = render_dev(PROJECT_DIR, workdir / "render", STACK_OVERRIDES)
    template = json.loads(rendered(manifests, "ConfigMap", f"{MODEL}-training-job")["data"]["job.json"])
    receiver = SignedReceiver(SECRET)
    with MotoServer.start(workdir) as moto, PushgatewayServer.start(workdir) as gateway:
        loop = Loop(moto, gateway, tracking, receiver, workdir, template)
        payload_bucket, _, payload_prefix = loop.payload_root.removeprefix("s3://").partition("/")
        artifact_bucket = loop.artifact_bucket
        assert loop.job_env("key")["TRAINING_LABELS"] == f"s3://{artifact_bucket}/{LABELS_PATH}"
        for bucket in {artifact_bucket, payload_bucket}:
            moto.s3_client().create_bucket(Bucket=bucket)
        # The collector writes JSON numbers as doubles; the reference sample is stored alike.
        _upload(moto, artifact_bucket, REFERENCE_PATH, reference_frame(rows=1500).astype({"input.age": float}))
        window = window_frame(600, datetime.now(timezone.utc), seed=21, shifted=True, model=MODEL)
        for path in write_partitions(workdir / "store", window):
            _upload(moto, payload_bucket, f"{payload_prefix}/{path.relative_to(workdir / 'store').as_posix()}", pd.read_parquet(path))
        _upload(moto, artifact_bucket, LABELS_PATH, labels_for(window, accuracy=0.9))
        try:
            yield loop
        finally:
            receiver.close()


@pytest.fixture(scope="module")
def champion(loop: Loop) -> str:
    """Version 1, trained by the same entrypoint on the reference sample alone, made champion."""
    run, summary = loop.train("initial", TRAINING_PAYLOAD_ROOT="", TRAINING_LABELS="", TRAINING_SERVED_VERSION="")
    assert run.returncode == 0, run.stderr[-3000:]
    assert summary["champion"] is None and summary["version"] == "1"
    loop.client().set_registered_model_alias(MODEL, "champion", "1")
    return "1"


@pytest.fixture(scope="module")
def drift_trigger(loop: Loop, champion: str) -> dict:
    """The drift job on the drifted window; its signed call is what the training Job receives."""
    run = loop.run(
        "monitoring.drift_job",
        DRIFT_MODEL=MODEL, DRIFT_MODEL_VERSION="v1", DRIFT_REFERENCE=loop.reference_uri, DRIFT_PAYLOAD_ROOT=loop.payload_root,
        DRIFT_WINDOW_HOURS="2", DRIFT_PUSHGATEWAY=loop.gateway.url, DRIFT_RETRAIN_POLICY="on_dataset_drift",
        DRIFT_RETRAIN_WEBHOOK=loop.receiver.url, DRIFT_RETRAIN_WEBHOOK_SECRET=SECRET,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(loop.receiver.accepted) == 1 and loop.receiver.refused == []
    return loop.receiver.accepted[0].payload


@pytest.fixture(scope="module")
def accepted(loop: Loop, drift_trigger: dict) -> tuple[subprocess.CompletedProcess[str], dict]:
    return loop.train(drift_trigger["idempotencyKey"])


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
    assert summary["candidate"] >= summary["champion"] - summary["margin"] and summary["champion"] > 0.7 and summary["margin"] == 0.01
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
    run, summary = loop.train("worse", TRAINING_TRAINER=f"{__name__}:MajorityClassTrainer")
    assert run.returncode == EXIT_REFUSED, run.stderr[-3000:]
    assert summary["outcome"] == "refused" and summary["version"] is None
    client = loop.client()
    assert client.get_model_version_by_alias(MODEL, "challenger").version == "2"
    assert [v.version for v in client.search_model_versions(f"name='{MODEL}'")] == ["2", "1"]
    tags = client.get_run(summary["run_id"]).data.tags
    assert tags["mlops.outcome"] == "refused" and "worse than the champion" in tags["mlops.reason"]


def test_the_challenger_goes_out_as_a_rendered_canary(loop: Loop, accepted, tmp_path: Path):
    """`mlops models resolve --alias challenger --canary 10` (the server's artifacts mapped onto the
    stack's artifact bucket, as the platform's MLflow stores them), then `mlops render`: the
    InferenceService serves version 2's artifact to 10 % of the traffic."""
    assert accepted[0].returncode == 0
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    loop.client()  # credentials for the registry calls
    parser = argparse.ArgumentParser()
    models_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["models", "resolve", MODEL, "--stack", "dev", "--tracking-uri", loop.tracking.url, "--alias", "challenger", "--canary", "10",
         "--artifacts-destination", f"s3://{loop.artifact_bucket}", "--project-dir", str(tmp_path)]
    )  # fmt: skip
    assert args.func(args) == 0
    declared = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())["config"]["mlops:models"][0]
    assert declared["model"]["resolvedVersion"] == "2" and declared["canary"]["trafficPercent"] == 10
    service = rendered(render_dev(tmp_path, tmp_path / "render", {}), "InferenceService", MODEL)
    predictor = service["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["model"]["storageUri"] == declared["model"]["artifactUri"]
