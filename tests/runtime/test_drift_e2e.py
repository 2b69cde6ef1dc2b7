"""Issue 7's end-to-end test: inference events -> collector -> S3 (and a local path) -> drift job ->
Pushgateway -> Prometheus -> the feature drift alert fires (and does not for a model whose traffic
did not shift).

Everything is real and local: moto's S3 server, the payload collector (`python -m serving.collector`),
the drift job (`python -m monitoring.drift_job`, configured by DRIFT_* variables like its CronJob),
prometheus-pushgateway, and Prometheus scraping it with `honor_labels: true` and evaluating the
platform's rule files from monitoring/rules/ unchanged. The drift rules need no `for:` (a pushed
verdict holds until the next run, see monitoring/rules/drift.yaml), so the alert fires on the first
evaluation after the scrape, with 1 s scrape and evaluation intervals.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from monitoring import catalog
from tests.conftest import PROJECT_DIR
from tests.runtime.payload_samples import reference_frame, window_frame
from tests.runtime.servers import (
    MotoServer,
    PrometheusServer,
    PushgatewayServer,
    free_port,
    wait_for,
    wait_until_answering,
)

pytestmark = pytest.mark.server

RULE_FILES = sorted((PROJECT_DIR / "monitoring" / "rules").glob("*.yaml"))
PAYLOAD_BUCKET = "payloads"
REFERENCE_BUCKET = "references"
PAYLOAD_ROOT = f"s3://{PAYLOAD_BUCKET}/store"
REFERENCE_URI = f"s3://{REFERENCE_BUCKET}/fraud/reference.parquet"
DRIFTED_MODEL = "fraud"
STABLE_MODEL = "steady"
LOCAL_MODEL = "fraud-on-disk"
ROWS_PER_MODEL = 300
INSTANCES_PER_EVENT = 50
ALERT_TIMEOUT_SECONDS = 30


@dataclass
class Stack:
    moto: MotoServer
    gateway: PushgatewayServer
    prometheus: PrometheusServer
    workdir: Path

    def aws_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFT_", "COLLECTOR_"))}
        env.update(MotoServer.AWS_ENV)
        env["AWS_ENDPOINT_URL"] = self.moto.url
        return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("drift-e2e")
    with MotoServer.start(workdir) as moto, PushgatewayServer.start(workdir) as gateway, PrometheusServer.start(
        workdir, scrape_targets=[gateway.address], rule_files=RULE_FILES
    ) as prometheus:
        s3 = moto.s3_client()
        for bucket in (PAYLOAD_BUCKET, REFERENCE_BUCKET):
            s3.create_bucket(Bucket=bucket)
        yield Stack(moto, gateway, prometheus, workdir)


def _headers(event_id: str, kind: str, service: str, sent_at: datetime) -> dict[str, str]:
    """The binary-mode CloudEvent headers KServe's inference logger sends."""
    return {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": f"org.kubeflow.serving.inference.{kind}",
        "ce-source": f"http://{service}-predictor-00001-deployment",
        "ce-time": sent_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "ce-inferenceservicename": service,
        "ce-namespace": "mlops-serving",
        "ce-component": "predictor",
        "ce-endpoint": "default",
    }


def _post_window(collector_url: str, service: str, frame: pd.DataFrame, sent_at: datetime) -> None:
    """Post `frame` as request/response event pairs of INSTANCES_PER_EVENT instances each."""
    features = [c for c in frame.columns if c.startswith("input.")]
    with httpx.Client(timeout=10.0) as client:
        for start in range(0, len(frame), INSTANCES_PER_EVENT):
            chunk = frame.iloc[start : start + INSTANCES_PER_EVENT]
            event_id = str(uuid.uuid4())
            instances = [{name.removeprefix("input."): row[name] for name in features} for _, row in chunk.iterrows()]
            bodies = {"request": {"instances": instances}, "response": {"predictions": chunk["output.prediction"].tolist()}}
            for kind, body in bodies.items():
                response = client.post(collector_url, content=json.dumps(body), headers=_headers(event_id, kind, service, sent_at))
                assert response.status_code == 200, response.text


def _collect(stack: Stack, windows: dict[str, pd.DataFrame], payload_root: str = PAYLOAD_ROOT) -> None:
    """Run the real collector on `payload_root` (S3 unless a path is given), post every window
    through it, and stop it with SIGTERM so it drains every accepted row to the store."""
    port = free_port()
    env = stack.aws_env()
    env.update(
        COLLECTOR_STORE_URI=payload_root,
        COLLECTOR_SPOOL_DIR=str(stack.workdir / f"spool-{uuid.uuid4().hex[:8]}"),
        COLLECTOR_S3_ENDPOINT_URL=stack.moto.url,
        COLLECTOR_HOST="127.0.0.1",
        COLLECTOR_PORT=str(port),
        COLLECTOR_MODELS=json.dumps([{"inferenceService": name, "version": "v1"} for name in windows]),
    )
    log_path = stack.workdir / "collector.log"
    with open(log_path, "ab") as log:
        collector = subprocess.Popen([sys.executable, "-m", "serving.collector"], cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/ready", collector, log_path, timeout=30)
        sent_at = datetime.now(timezone.utc)
        for service, frame in windows.items():
            _post_window(f"http://127.0.0.1:{port}/", service, frame, sent_at)
    finally:
        collector.send_signal(signal.SIGTERM)
        # uvicorn re-raises SIGTERM once its graceful shutdown (and the collector's drain) is done.
        assert collector.wait(timeout=60) in (0, -signal.SIGTERM), log_path.read_text()


def _run_drift_job(
    stack: Stack, model: str, payload_root: str = PAYLOAD_ROOT, reference: str = REFERENCE_URI
) -> subprocess.CompletedProcess[str]:
    env = stack.aws_env()
    env.update(
        DRIFT_MODEL=model,
        DRIFT_MODEL_VERSION="v1",
        DRIFT_REFERENCE=reference,
        DRIFT_PAYLOAD_ROOT=payload_root,
        DRIFT_WINDOW_HOURS="1",
        DRIFT_PUSHGATEWAY=stack.gateway.url,
    )
    return subprocess.run([sys.executable, "-m", "monitoring.drift_job"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120)


def _alerts_for(stack: Stack, model: str) -> list[dict[str, Any]]:
    return [a for a in stack.prometheus.alerts() if a["labels"].get("model") == model]


def _last_rule_evaluation(stack: Stack) -> str:
    groups = {group["name"]: group for group in stack.prometheus.rule_groups()}
    return groups["mlops-drift"]["rules"][0]["lastEvaluation"]


@pytest.fixture(scope="module")
def drift_runs(stack: Stack) -> dict[str, subprocess.CompletedProcess[str]]:
    """A shifted window for `fraud`, an unshifted one for `steady`, both collected and analysed."""
    buffer = io.BytesIO()
    reference_frame().to_parquet(buffer, index=False)
    stack.moto.s3_client().put_object(Bucket=REFERENCE_BUCKET, Key="fraud/reference.parquet", Body=buffer.getvalue())
    now = datetime.now(timezone.utc)
    _collect(
        stack,
        {
            DRIFTED_MODEL: window_frame(ROWS_PER_MODEL, now, seed=11, shifted=True),
            STABLE_MODEL: window_frame(ROWS_PER_MODEL, now, seed=12, shifted=False),
        },
    )
    return {model: _run_drift_job(stack, model) for model in (DRIFTED_MODEL, STABLE_MODEL)}


def test_collected_payloads_and_reports_land_in_s3(stack: Stack, drift_runs: dict[str, subprocess.CompletedProcess[str]]):
    """The collector wrote each model's rows as Parquet in the S3 layout; each drift job succeeded
    and wrote its JSON and HTML report next to the data."""
    for model, run in drift_runs.items():
        assert run.returncode == 0, run.stderr
    s3 = stack.moto.s3_client()
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=PAYLOAD_BUCKET, Prefix="store/")["Contents"]]
    for model in (DRIFTED_MODEL, STABLE_MODEL):
        assert any(k.startswith(f"store/{model}/v1/date=") and k.endswith(".parquet") for k in keys), keys
        reports = [k for k in keys if k.startswith(f"store/{model}/v1/reports/")]
        assert sorted(k.rsplit(".", 1)[1] for k in reports) == ["html", "json"]
        report = json.loads(s3.get_object(Bucket=PAYLOAD_BUCKET, Key=next(k for k in reports if k.endswith(".json")))["Body"].read())
        assert report["rows"]["current"] == ROWS_PER_MODEL


def test_feature_drift_alert_fires_in_prometheus(stack: Stack, drift_runs: dict[str, subprocess.CompletedProcess[str]]):
    """The shifted features of `fraud` fire MlopsFeatureDrift in the real Prometheus."""
    assert drift_runs[DRIFTED_MODEL].returncode == 0, drift_runs[DRIFTED_MODEL].stderr

    def firing_features() -> set[str]:
        return {
            a["labels"]["feature"]
            for a in _alerts_for(stack, DRIFTED_MODEL)
            if a["labels"]["alertname"] == "MlopsFeatureDrift" and a["state"] == "firing"
        }

    fired = wait_for("MlopsFeatureDrift to fire for fraud", lambda: firing_features() >= {"amount", "country"}, timeout=ALERT_TIMEOUT_SECONDS)
    assert fired
    # Other modules on the same session's Prometheus may push drift for another version of `fraud`.
    amount_alerts = [a for a in _alerts_for(stack, DRIFTED_MODEL) if a["labels"].get("feature") == "amount"]
    assert [a["labels"]["severity"] for a in amount_alerts if a["labels"]["version"] == "v1"] == ["warning"]
    assert "age" not in firing_features()
    assert {a["labels"]["alertname"] for a in _alerts_for(stack, DRIFTED_MODEL) if a["state"] == "firing"} >= {
        "MlopsDatasetDrift",
        "MlopsPredictionDrift",
    }


def test_no_alert_for_a_model_whose_traffic_did_not_shift(stack: Stack, drift_runs: dict[str, subprocess.CompletedProcess[str]]):
    """`steady`'s verdicts are in Prometheus (all 0, status ok) and, rules evaluated after they
    arrived, no alert of any kind exists for it."""
    assert drift_runs[STABLE_MODEL].returncode == 0, drift_runs[STABLE_MODEL].stderr
    series = wait_for(
        "steady's drift verdicts in Prometheus",
        lambda: stack.prometheus.query(f'{catalog.DRIFT_FEATURE_DRIFTED}{{model="{STABLE_MODEL}"}}'),
        timeout=ALERT_TIMEOUT_SECONDS,
    )
    assert {s["metric"]["feature"]: s["value"][1] for s in series} == {"amount": "0", "age": "0", "country": "0"}
    assert stack.prometheus.query(f'{catalog.DRIFT_JOB_STATUS}{{model="{STABLE_MODEL}", status="ok"}} == 1')
    for _ in range(2):
        seen_at = _last_rule_evaluation(stack)
        wait_for("a rule evaluation after the verdicts arrived", lambda: _last_rule_evaluation(stack) != seen_at, timeout=10)
    assert _alerts_for(stack, STABLE_MODEL) == []


def test_the_same_chain_on_a_local_payload_path_fires_the_alert(stack: Stack):
    """The collector and the drift job on a filesystem path (the local target's other store)."""
    root = stack.workdir / "local-store"
    reference = stack.workdir / "local-reference.parquet"
    reference_frame().to_parquet(reference, index=False)
    _collect(stack, {LOCAL_MODEL: window_frame(ROWS_PER_MODEL, datetime.now(timezone.utc), seed=13, shifted=True)}, str(root))
    assert list(root.glob(f"{LOCAL_MODEL}/v1/date=*/hour=*/*.parquet"))
    run = _run_drift_job(stack, LOCAL_MODEL, str(root), str(reference))
    assert run.returncode == 0, run.stderr
    assert sorted(p.suffix for p in root.glob(f"{LOCAL_MODEL}/v1/reports/*")) == [".html", ".json"]
    wait_for(
        "MlopsFeatureDrift to fire for the on-disk model",
        lambda: any(
            a["labels"]["alertname"] == "MlopsFeatureDrift" and a["state"] == "firing" for a in _alerts_for(stack, LOCAL_MODEL)
        ),
        timeout=ALERT_TIMEOUT_SECONDS,
    )
