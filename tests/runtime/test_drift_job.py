"""The drift job (`python -m monitoring.drift_job`) against a real Pushgateway and real files.

Proves: settings parse from options and DRIFT_* variables with clear errors; a run pushes the
contract's metrics, writes JSON/HTML reports and reads only the window; missing data, schema
changes and empty windows push their status and exit with their own code (never "no drift");
performance drift from labels; the retraining webhook is called when the policy says so, with
bounded retries; MLflow run artifacts work as references.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring import catalog
from monitoring.drift_job.cli import main
from monitoring.drift_job.config import ConfigError, RetrainPolicy, load_config
from monitoring.drift_job.status import (
    EXIT_CONFIG_ERROR,
    EXIT_EMPTY_WINDOW,
    EXIT_ERROR,
    EXIT_MISSING_DATA,
    EXIT_OK,
    EXIT_PUSH_FAILED,
    EXIT_SCHEMA_MISMATCH,
    EXIT_WEBHOOK_FAILED,
)
from tests.conftest import PROJECT_DIR
from tests.runtime.payload_samples import labels_for, reference_frame, window_frame, write_partitions
from tests.runtime.servers import PushgatewayServer, free_port

pytestmark = pytest.mark.server

NOW = datetime.now(timezone.utc)
REQUIRED = ["--model-version", "v1", "--window-hours", "2"]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushgatewayServer]:
    with PushgatewayServer.start(tmp_path_factory.mktemp("pushgateway")) as server:
        yield server


class Payloads:
    """A payload store root, a reference file and the arguments of a job run over them."""

    def __init__(self, root: Path, model: str, gateway: PushgatewayServer):
        self.root = root
        self.model = model
        self.gateway = gateway
        self.store = root / "store"
        self.reference = root / "reference.parquet"
        reference_frame().to_parquet(self.reference, index=False)

    def add_window(self, frame: pd.DataFrame) -> pd.DataFrame:
        write_partitions(self.store, frame.assign(model=self.model))
        return frame

    def argv(self, *extra: str) -> list[str]:
        return [
            "--model", self.model, *REQUIRED, "--reference", str(self.reference), "--payload-root", str(self.store),
            "--pushgateway", self.gateway.url, "--min-rows", "50", *extra,
        ]  # fmt: skip

    def run(self, *extra: str) -> int:
        return main(self.argv(*extra), environ={})

    def samples(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Pushed samples of metric `name` for this model: label set (without job/model/version) -> value."""
        found = {}
        for family in text_string_to_metric_families(self.gateway.metrics_text()):
            for sample in family.samples:
                if sample.name == name and sample.labels.get("model") == self.model:
                    labels = {k: v for k, v in sample.labels.items() if k not in ("job", "model", "version", "instance")}
                    found[frozenset(labels.items())] = sample.value
        return found

    def value(self, name: str, **labels: str) -> float:
        return self.samples(name)[frozenset(labels.items())]

    def report(self) -> dict[str, Any]:
        reports = sorted((self.store / self.model / "v1" / "reports").glob("*.json"))
        assert len(reports) == 1, reports
        return json.loads(reports[0].read_text())


@pytest.fixture
def payloads(tmp_path: Path, gateway: PushgatewayServer, request: pytest.FixtureRequest) -> Payloads:
    model = "m-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:60].strip("-")
    return Payloads(tmp_path, model, gateway)


# --- settings -------------------------------------------------------------------------------------


def test_settings_come_from_variables_and_options_override_them():
    """A CronJob can configure everything with DRIFT_* variables; an option beats its variable."""
    environ = {
        "DRIFT_MODEL": "fraud", "DRIFT_MODEL_VERSION": "v1", "DRIFT_REFERENCE": "s3://refs/fraud.parquet",
        "DRIFT_PAYLOAD_ROOT": "s3://payloads/store/", "DRIFT_WINDOW_HOURS": "24", "DRIFT_PUSHGATEWAY": "http://pgw:9091",
        "DRIFT_STATTEST": "amount=psi, country=chisquare", "DRIFT_RETRAIN_POLICY": "on_drift",
        "DRIFT_RETRAIN_WEBHOOK": "http://retrain/hook", "DRIFT_MIN_ROWS": "10",
    }  # fmt: skip
    config = load_config(["--window-hours", "6", "--drift-share-threshold", "0.3"], environ)
    assert config.window_hours == 6
    assert config.drift_share_threshold == 0.3
    assert config.payload_root == "s3://payloads/store"
    assert config.stattests == {"amount": "psi", "country": "chisquare"}
    assert config.retrain_policy is RetrainPolicy.ON_DRIFT
    assert config.min_rows == 10
    assert config.reports_root == "s3://payloads/store"
    assert config.feature_threshold is None and config.labels is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--window-hours", "0"], "--window-hours='0': must be at least 1"),
        (["--window-hours", "two"], "--window-hours='two': must be a whole number"),
        (["--drift-share-threshold", "1.5"], "--drift-share-threshold='1.5': must be a fraction in (0, 1]"),
        (["--payload-root", "bucket/x"], "--payload-root='bucket/x': must start with one of s3://, gs://, file://, /"),
        (["--pushgateway", "pgw:9091"], "--pushgateway='pgw:9091': must be an http:// or https:// URL"),
        (["--retrain-policy", "always"], "--retrain-policy='always': must be one of never, on_drift, on_dataset_drift"),
        (["--retrain-policy", "on_drift"], "--retrain-policy='on_drift' needs --retrain-webhook"),
        (["--retrain-webhook", "http://hook"], "--retrain-webhook is set but --retrain-policy is 'never'"),
        (["--labels", "/labels.csv"], "--labels needs --task"),
        (["--stattest", "amount"], "--stattest='amount': must be COLUMN=STATTEST"),
        (["--stattest", "a=psi", "--stattest", "a=ks"], "--stattest names column(s) ['a'] more than once"),
        (["--reference", "runs:/abc/ref.parquet"], "set MLFLOW_TRACKING_URI"),
        (["--model", "fraud/v2"], "--model='fraud/v2': must be letters, digits"),
    ],
)
def test_invalid_settings_name_the_option_the_value_and_what_is_allowed(argv: list[str], message: str):
    """Each bad option is reported with its value and the allowed values."""
    base = ["--model", "fraud", "--model-version", "v1", "--reference", "/ref.parquet", "--payload-root", "/store",
            "--window-hours", "1", "--pushgateway", "http://pgw:9091"]  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        load_config(base + argv, {})
    assert message in str(raised.value)


def test_missing_settings_are_reported_together_and_exit_2(capsys: pytest.CaptureFixture[str]):
    """Without settings the job exits 2 (nothing pushed) listing every required option and its variable."""
    assert main([], environ={}) == EXIT_CONFIG_ERROR
    error = capsys.readouterr().err
    for option, variable in [("--model", "DRIFT_MODEL"), ("--reference", "DRIFT_REFERENCE"), ("--pushgateway", "DRIFT_PUSHGATEWAY")]:
        assert f"{option} (or {variable}) is required" in error


# --- verdicts -------------------------------------------------------------------------------------


def test_shifted_window_pushes_every_drift_metric_and_writes_reports(payloads: Payloads):
    """Shifted amount and country drift, age does not; dataset, prediction and status are pushed,
    and the JSON report next to the data holds the same verdicts."""
    payloads.add_window(window_frame(300, NOW, shifted=True))
    assert payloads.run() == EXIT_OK

    drifted = {dict(k)["feature"]: v for k, v in payloads.samples(catalog.DRIFT_FEATURE_DRIFTED).items()}
    assert drifted == {"amount": 1.0, "age": 0.0, "country": 1.0}
    scores = payloads.samples(catalog.DRIFT_FEATURE_SCORE)
    assert {dict(k)["feature"] for k in scores} == {"amount", "age", "country"}
    assert all(dict(k)["method"] for k in scores)
    assert payloads.value(catalog.DRIFT_DATASET_SHARE) == pytest.approx(2 / 3)
    assert payloads.value(catalog.DRIFT_DATASET_DRIFTED) == 1.0
    assert payloads.value(catalog.DRIFT_PREDICTION_DRIFTED) == 1.0
    assert len(payloads.samples(catalog.DRIFT_PREDICTION_SCORE)) == 1
    statuses = {dict(k)["status"]: v for k, v in payloads.samples(catalog.DRIFT_JOB_STATUS).items()}
    assert statuses == {"ok": 1.0, "missing_data": 0.0, "schema_mismatch": 0.0, "empty_window": 0.0, "error": 0.0}
    assert payloads.value(catalog.DRIFT_JOB_LAST_SUCCESS) == pytest.approx(NOW.timestamp(), abs=120)
    assert payloads.value(catalog.DRIFT_JOB_LAST_RUN) == payloads.value(catalog.DRIFT_JOB_LAST_SUCCESS)

    report = payloads.report()
    assert report["model"] == payloads.model and report["version"] == "v1"
    assert report["rows"] == {"reference": 600, "current": 300}
    assert sorted(report["summary"]["driftedFeatures"]) == ["amount", "country"]
    by_feature = {f["name"]: f for f in report["features"]}
    for labels, score in scores.items():
        assert by_feature[dict(labels)["feature"]]["score"] == pytest.approx(score)
    html_report = next((payloads.store / payloads.model / "v1" / "reports").glob("*.html")).read_text()
    assert "Dataset drifted" in html_report and "amount" in html_report
    # A picture per feature and one for the prediction, drifted features first.
    assert html_report.count('<svg class="distribution"') == 4
    assert html_report.index("<h3>amount</h3>") < html_report.index("<h3>age</h3>")


def test_window_like_the_reference_reports_no_drift(payloads: Payloads):
    """An unshifted window pushes drifted=0 everywhere with status ok: "no drift" only from real data."""
    payloads.add_window(window_frame(300, NOW, shifted=False))
    assert payloads.run() == EXIT_OK
    assert set(payloads.samples(catalog.DRIFT_FEATURE_DRIFTED).values()) == {0.0}
    assert payloads.value(catalog.DRIFT_DATASET_DRIFTED) == 0.0
    assert payloads.value(catalog.DRIFT_PREDICTION_DRIFTED) == 0.0
    assert payloads.value(catalog.DRIFT_JOB_STATUS, status="ok") == 1.0


def test_only_rows_inside_the_window_are_read(payloads: Payloads):
    """Shifted rows from five hours ago are outside a 2-hour window; rows of the window's first
    hour partition that are older than the window start are dropped too."""
    payloads.add_window(window_frame(400, NOW - timedelta(hours=5), seed=7, shifted=True))
    recent = payloads.add_window(window_frame(300, NOW, shifted=False, span=timedelta(hours=3)))
    assert payloads.run() == EXIT_OK
    assert payloads.value(catalog.DRIFT_DATASET_DRIFTED) == 0.0
    inside = (pd.to_datetime(recent["timestamp"], utc=True) > pd.Timestamp(NOW - timedelta(hours=2))).sum()
    assert payloads.report()["rows"]["current"] == pytest.approx(inside, abs=3)


def test_stattest_and_threshold_options_reach_the_engine(payloads: Payloads):
    """`--stattest amount=psi` (bare or `input.` name) picks the test pushed in the method label;
    `--feature-threshold` replaces every feature's default threshold."""
    payloads.add_window(window_frame(300, NOW, shifted=True))
    assert payloads.run("--stattest", "amount=psi", "--stattest", "input.country=psi", "--feature-threshold", "0.2") == EXIT_OK
    methods = {dict(k)["feature"]: dict(k)["method"] for k in payloads.samples(catalog.DRIFT_FEATURE_SCORE)}
    assert methods["amount"] == methods["country"] == "psi"
    assert methods["age"] != "psi"
    assert {f["name"]: f["threshold"] for f in payloads.report()["features"]} == {"amount": 0.2, "age": 0.2, "country": 0.2}


@pytest.mark.parametrize(
    ("stattest", "message"),
    [("amount=nosuch", "no stattest named 'nosuch'"), ("height=psi", "--stattest names column(s) ['height']")],
    ids=["unknown-test", "unknown-column"],
)
def test_bad_stattest_exits_2_and_pushes_error(payloads: Payloads, stattest: str, message: str, caplog: pytest.LogCaptureFixture):
    """A stattest the engine does not know, or a column the model does not have, is a settings error
    found once the data is read: exit 2, status error."""
    payloads.add_window(window_frame(300, NOW))
    assert payloads.run("--stattest", stattest) == EXIT_CONFIG_ERROR
    assert payloads.value(catalog.DRIFT_JOB_STATUS, status="error") == 1.0
    assert message in caplog.text


# --- failures are never "no drift" ----------------------------------------------------------------


def test_failed_run_pushes_its_status_and_keeps_the_last_good_verdicts(payloads: Payloads):
    """After a good run, a run whose reference vanished exits 3 and pushes missing_data, while the
    last verdicts and the last success time stay in the Pushgateway for the staleness alert."""
    payloads.add_window(window_frame(300, NOW, shifted=True))
    assert payloads.run() == EXIT_OK
    last_success = payloads.value(catalog.DRIFT_JOB_LAST_SUCCESS)
    payloads.reference.unlink()

    assert payloads.run() == EXIT_MISSING_DATA
    assert payloads.value(catalog.DRIFT_JOB_STATUS, status="missing_data") == 1.0
    assert payloads.value(catalog.DRIFT_JOB_STATUS, status="ok") == 0.0
    assert payloads.value(catalog.DRIFT_JOB_LAST_SUCCESS) == last_success
    assert payloads.value(catalog.DRIFT_JOB_LAST_RUN) >= last_success
    assert payloads.value(catalog.DRIFT_DATASET_DRIFTED) == 1.0


@pytest.mark.parametrize("missing", ["payloads of the version", "labels file"])
def test_missing_data_exits_3_with_status_missing_data(payloads: Payloads, missing: str, caplog: pytest.LogCaptureFixture):
    """No partitions at all for the model version, or a labels path that does not exist."""
    if missing == "labels file":
        payloads.add_window(window_frame(300, NOW))
        extra = ["--labels", str(payloads.root / "labels.parquet"), "--task", "classification"]
    else:
        extra = []
    assert payloads.run(*extra) == EXIT_MISSING_DATA
    assert payloads.value(catalog.DRIFT_JOB_STATUS, status="missing_data") == 1.0
    assert not payloads.samples(catalog.DRIFT_JOB_LAST_SUCCESS)
    assert "missing_data" in caplog.text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: f.assign(**{"input.channel": "web"}), "added: input.channel"),
        (lambda f: f.drop(columns=["input.age"]), "removed: input.age"),
        (lambda f: f.assign(**{"input.age": f["input.age"].astype(str)}), "retyped: input.age (numeric -> categorical)"),
        (lambda f: f.assign(**{"input.age": None}), "removed: input.age"),
    ],
    ids=["added", "removed", "retyped", "no-values"],
)
def test_schema_change_exits_4_naming_the_column(payloads: Payloads, change: Any, named: str, caplog: pytest.LogCaptureFixture):
    """Columns added, removed or retyped against the reference stop the run with schema_mismatch."""
    payloads.add_window(change(window_frame(300, NOW)))
    assert payloads.run() == EXIT_SCHEMA_MISMATCH
    assert payloads.value(catalog.DRIFT_JOB_STATUS, status="schema_mismatch") == 1.0
    assert named in caplog.text


@pytest.mark.parametrize("min_rows", ["50", "400"], ids=["no-rows-in-window", "fewer-than-min-rows"])
def test_empty_window_exits_5(payloads: Payloads, min_rows: str):
    """Data that exists but not in the window (or too little of it) is empty_window, not "no drift"."""
    payloads.add_window(window_frame(300, NOW - timedelta(hours=5) if min_rows == "50" else NOW))
    assert payloads.run("--min-rows", min_rows) == EXIT_EMPTY_WINDOW
    assert payloads.value(catalog.DRIFT_JOB_STATUS, status="empty_window") == 1.0


def test_unreadable_payload_file_exits_6_with_status_error(payloads: Payloads, caplog: pytest.LogCaptureFixture):
    """Any other failure (here a corrupt Parquet file in the window) is status error, exit 6, logged
    with its traceback."""
    written = write_partitions(payloads.store, window_frame(300, NOW).assign(model=payloads.model))
    written[-1].write_bytes(b"not parquet")
    assert payloads.run() == EXIT_ERROR
    assert payloads.value(catalog.DRIFT_JOB_STATUS, status="error") == 1.0
    assert "failed unexpectedly" in caplog.text and "Traceback" in caplog.text


def test_unreachable_pushgateway_exits_8_after_writing_reports(payloads: Payloads):
    """The verdicts cannot be delivered: a distinct exit code, and the reports are still written."""
    payloads.add_window(window_frame(300, NOW))
    argv = payloads.argv()
    argv[argv.index("--pushgateway") + 1] = f"http://127.0.0.1:{free_port()}"
    assert main(argv, environ={}) == EXIT_PUSH_FAILED
    assert payloads.report()["summary"]["datasetDrifted"] is False


# --- performance ----------------------------------------------------------------------------------


def test_classification_performance_from_labels_joined_on_request_id(payloads: Payloads):
    """Labels agreeing with 60 % of predictions give accuracy ~0.6 against ~0.9 on the reference."""
    window = payloads.add_window(window_frame(300, NOW))
    labels = labels_for(window, accuracy=0.6)
    labels.iloc[:200].to_csv(payloads.root / "labels.csv", index=False)
    assert payloads.run("--labels", str(payloads.root / "labels.csv"), "--task", "classification") == EXIT_OK

    joined = window.merge(labels.iloc[:200], on="request_id")
    expected_accuracy = float((joined["output.prediction"] == joined["label"]).mean())
    reference = reference_frame()
    expected_reference = float((reference["output.prediction"] == reference["label"]).mean())
    assert payloads.value(catalog.DRIFT_PERFORMANCE, metric="accuracy") == pytest.approx(expected_accuracy, abs=1e-9)
    assert payloads.value(catalog.DRIFT_PERFORMANCE_REFERENCE, metric="accuracy") == pytest.approx(expected_reference, abs=1e-9)
    assert {dict(k)["metric"] for k in payloads.samples(catalog.DRIFT_PERFORMANCE)} == {"accuracy", "f1"}
    assert payloads.report()["performance"]["labelled_rows"] == 200


def test_regression_performance_reports_mae_and_rmse(payloads: Payloads):
    """A regression model's labelled window gives MAE and RMSE equal to their definitions."""
    rng = np.random.default_rng(5)
    reference = reference_frame()
    reference["output.prediction"] = reference["input.amount"] * 0.5
    reference["label"] = reference["output.prediction"] + rng.normal(0, 1, len(reference))
    reference.to_parquet(payloads.reference, index=False)
    window = window_frame(300, NOW)
    window["output.prediction"] = window["input.amount"] * 0.5
    payloads.add_window(window)
    labels = pd.DataFrame({"request_id": window["request_id"], "label": window["output.prediction"] + rng.normal(0, 3, len(window))})
    labels.to_parquet(payloads.root / "labels.parquet", index=False)
    assert payloads.run("--labels", str(payloads.root / "labels.parquet"), "--task", "regression") == EXIT_OK

    errors = window["output.prediction"] - labels["label"]
    assert payloads.value(catalog.DRIFT_PERFORMANCE, metric="mae") == pytest.approx(float(errors.abs().mean()), rel=1e-9)
    assert payloads.value(catalog.DRIFT_PERFORMANCE, metric="rmse") == pytest.approx(float(np.sqrt((errors**2).mean())), rel=1e-9)
    reference_errors = reference["output.prediction"] - reference["label"]
    assert payloads.value(catalog.DRIFT_PERFORMANCE_REFERENCE, metric="mae") == pytest.approx(float(reference_errors.abs().mean()), rel=1e-9)


def test_labels_not_yet_arrived_leave_performance_out_and_say_so(payloads: Payloads):
    """Labels lag: with no labelled row in the window the run succeeds, pushes no performance and
    notes why in the report."""
    payloads.add_window(window_frame(300, NOW))
    pd.DataFrame({"request_id": ["old-1", "old-2"], "label": [1.0, 0.0]}).to_csv(payloads.root / "labels.csv", index=False)
    assert payloads.run("--labels", str(payloads.root / "labels.csv"), "--task", "classification") == EXIT_OK
    assert not payloads.samples(catalog.DRIFT_PERFORMANCE)
    assert any("no row of the window has a label" in note for note in payloads.report()["notes"])


# --- retraining webhook ---------------------------------------------------------------------------


class Hook:
    """A local HTTP receiver answering the scripted statuses in turn (the last one repeats)."""

    def __init__(self, statuses: list[int]):
        self.statuses = statuses
        self.calls: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                hook.calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(hook.statuses[min(len(hook.calls), len(hook.statuses)) - 1])
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/retrain"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_factory() -> Iterator[Any]:
    hooks: list[Hook] = []

    def make(statuses: list[int]) -> Hook:
        hooks.append(Hook(statuses))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


def _webhook_args(hook: Hook, policy: str, attempts: str = "4") -> list[str]:
    return ["--retrain-webhook", hook.url, "--retrain-policy", policy, "--retrain-webhook-attempts", attempts,
            "--retrain-webhook-backoff", "0.05"]  # fmt: skip


def test_dataset_drift_calls_the_webhook_retrying_until_it_accepts(payloads: Payloads, hook_factory: Any):
    """Policy on_dataset_drift with a drifted dataset: 503, 503, then 200 -> three calls, exit 0,
    each carrying model, version and the drift summary."""
    hook = hook_factory([503, 503, 200])
    payloads.add_window(window_frame(300, NOW, shifted=True))
    assert payloads.run(*_webhook_args(hook, "on_dataset_drift")) == EXIT_OK
    assert len(hook.calls) == 3
    call = hook.calls[-1]
    assert (call["model"], call["version"], call["policy"]) == (payloads.model, "v1", "on_dataset_drift")
    assert call["drift"]["datasetDrifted"] is True
    assert sorted(call["drift"]["driftedFeatures"]) == ["amount", "country"]
    assert call["report"].endswith(".json")


def test_no_drift_does_not_call_the_webhook(payloads: Payloads, hook_factory: Any):
    """Policy on_drift and a stable window: the webhook is not called."""
    hook = hook_factory([200])
    payloads.add_window(window_frame(300, NOW))
    assert payloads.run(*_webhook_args(hook, "on_drift")) == EXIT_OK
    assert hook.calls == []


@pytest.mark.parametrize(("statuses", "calls"), [([500], 3), ([400], 1)], ids=["5xx-retried-then-given-up", "4xx-not-retried"])
def test_failing_webhook_exits_7_after_bounded_attempts(payloads: Payloads, hook_factory: Any, statuses: list[int], calls: int):
    """A webhook that keeps failing is tried at most --retrain-webhook-attempts times (a 4xx once);
    the verdicts stay pushed and the status says error."""
    hook = hook_factory(statuses)
    payloads.add_window(window_frame(300, NOW, shifted=True))
    assert payloads.run(*_webhook_args(hook, "on_drift", attempts="3")) == EXIT_WEBHOOK_FAILED
    assert len(hook.calls) == calls
    assert payloads.value(catalog.DRIFT_JOB_STATUS, status="error") == 1.0
    assert payloads.value(catalog.DRIFT_DATASET_DRIFTED) == 1.0


# --- references and entrypoint --------------------------------------------------------------------


def test_reference_from_an_mlflow_run_artifact(payloads: Payloads, monkeypatch: pytest.MonkeyPatch):
    """`--reference runs:/<run_id>/reference/reference.parquet` downloads the artifact through MLflow."""
    import mlflow

    tracking_uri = f"sqlite:///{payloads.root / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.create_experiment("drift", artifact_location=(payloads.root / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifact(str(payloads.reference), artifact_path="reference")
    payloads.reference.unlink()
    payloads.add_window(window_frame(300, NOW, shifted=True))
    argv = payloads.argv()
    argv[argv.index("--reference") + 1] = f"runs:/{run.info.run_id}/reference/reference.parquet"
    assert main(argv, environ=os.environ) == EXIT_OK
    assert payloads.value(catalog.DRIFT_DATASET_DRIFTED) == 1.0


def test_module_entrypoint_runs_from_variables_only(payloads: Payloads):
    """`python -m monitoring.drift_job` configured purely by DRIFT_* variables, as the CronJob runs it."""
    payloads.add_window(window_frame(300, NOW, shifted=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFT_")}
    env.update(
        DRIFT_MODEL=payloads.model, DRIFT_MODEL_VERSION="v1", DRIFT_REFERENCE=str(payloads.reference),
        DRIFT_PAYLOAD_ROOT=f"file://{payloads.store}", DRIFT_WINDOW_HOURS="2", DRIFT_PUSHGATEWAY=payloads.gateway.url,
        DRIFT_REPORT_ROOT=str(payloads.root / "reports"),
    )  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "monitoring.drift_job"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_OK, result.stderr
    assert payloads.value(catalog.DRIFT_DATASET_DRIFTED) == 1.0
    assert len(list((payloads.root / "reports" / payloads.model / "v1" / "reports").glob("*.json"))) == 1


def add_boolean_with_missing_values(payloads: Payloads) -> None:
    """A boolean feature `flag`: plain in the reference, with missing values (object dtype once
    read back from Parquet) in a shifted window."""
    reference = reference_frame()
    reference["input.flag"] = np.arange(len(reference)) % 3 == 0
    reference.to_parquet(payloads.reference, index=False)
    window = window_frame(300, NOW, shifted=True)
    window["input.flag"] = pd.Series(np.arange(300) % 2 == 0, dtype=object).where(np.arange(300) % 7 != 0, None)
    payloads.add_window(window)


def test_features_left_out_are_named_with_their_reason_in_metrics_and_report(payloads: Payloads):
    """A boolean feature that gained a missing value (stored by the collector as a nullable
    Parquet bool, read back as objects) is skipped, as Evidently skips it, not a schema mismatch;
    the pushed `mlops_drift_feature_skipped` and the report name it and say why."""
    add_boolean_with_missing_values(payloads)
    assert payloads.run() == EXIT_OK
    assert payloads.samples(catalog.DRIFT_FEATURE_SKIPPED) == {
        frozenset({("feature", "flag"), ("reason", "boolean_with_missing")}): 1.0
    }
    report = payloads.report()
    assert [s["name"] for s in report["skipped"]] == ["flag"]
    assert report["skipped"][0]["reason"].startswith("booleans with missing values")
    assert report["summary"]["skippedFeatures"] == {"flag": "boolean_with_missing"}
    assert {f["name"] for f in report["features"]} == {"amount", "age", "country"}


def test_column_type_option_compares_a_feature_evidently_leaves_out(payloads: Payloads):
    """`--column-type flag=cat` (here from DRIFT_COLUMN_TYPE) compares the boolean-with-missing
    feature as categorical; an unknown type is a settings error naming the allowed ones."""
    add_boolean_with_missing_values(payloads)
    assert main(payloads.argv(), environ={"DRIFT_COLUMN_TYPE": "flag=cat"}) == EXIT_OK
    flag = next(f for f in payloads.report()["features"] if f["name"] == "flag")
    assert (flag["column_type"], flag["method"], flag["drifted"]) == ("cat", "z", True)
    assert payloads.report()["skipped"] == []
    with pytest.raises(ConfigError, match=r"--column-type='flag=bool': must be COLUMN=TYPE with TYPE one of num, cat, text"):
        load_config(payloads.argv("--column-type", "flag=bool"), {})
