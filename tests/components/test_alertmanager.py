"""The Alertmanager configuration the platform renders, loaded by a real Alertmanager 0.25 (Debian).

- amtool accepts the configuration as Helm hands it to the operator (the chart's default
  `alertmanager.config` with the platform's keys merged over it), for the committed prod stack too;
- amtool's route tester sends each kind of alert to the receiver the stack config says;
- a real Prometheus, loaded with the platform's rendered rules, fires a drift alert (from results the
  drift job's own push code put into a real Pushgateway) and a canary-gate alert (from the queue-proxy
  request histogram of tests/runtime/request_series.py, scraped live), and Alertmanager delivers
  both to local webhook receivers with model, version and runbook in the payload;
- the inhibition silences a canary-gate alert while the model's promoted alert fires.
"""

from __future__ import annotations

import copy
import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from components.platform.alertmanager import CREDENTIALS_SECRET, PROMOTED_ALERT, SECRETS_MOUNT, AlertmanagerFiles, alertmanager_files, credential_path
from components.model.observability import prometheus_rule_spec
from mlops.offline.render import render
from monitoring.drift_job.push import push_results
from monitoring.drift_job.results import ColumnVerdict, DriftResult
from monitoring.drift_job.window import Window
from components.declarations import AlertingSettings
from tests.components.test_model_deployment import declaration
from tests.conftest import PROJECT_DIR, REFERENCE_DIR
from tests.runtime.request_series import Revision, revision_targets
from tests.runtime.servers import AlertmanagerServer, PrometheusServer, PushgatewayServer, amtool, wait_for

NAMESPACE = "mlops-serving"
DRIFT_RULES = PROJECT_DIR / "monitoring" / "rules" / "drift.yaml"


def helm_merged(defaults: Any, values: Any) -> Any:
    """What Helm does with a values map over the chart's defaults: maps merge key by key, anything
    else (lists included) is replaced."""
    if isinstance(defaults, dict) and isinstance(values, dict):
        merged = copy.deepcopy(defaults)
        for key, value in values.items():
            merged[key] = helm_merged(defaults.get(key), value)
        return merged
    return copy.deepcopy(values)


def chart_config(rendered: dict[str, Any]) -> dict[str, Any]:
    chart_defaults = yaml.safe_load((REFERENCE_DIR / "chart-values" / "kube-prometheus-stack.values.yaml").read_text())
    return helm_merged(chart_defaults["alertmanager"]["config"], rendered)


def write_config(path: Path, rendered: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(chart_config(rendered), sort_keys=False))
    return path


def mounted(files: AlertmanagerFiles, workdir: Path) -> dict[str, Any]:
    """The configuration as the Alertmanager pod sees it: the operator mounts the credentials Secret
    under SECRETS_MOUNT; here the files are written under `workdir` and the paths point there."""
    mount = workdir / "secrets"
    for key, value in files.credentials.items():
        path = mount / CREDENTIALS_SECRET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)
    return json.loads(json.dumps(files.config).replace(SECRETS_MOUNT, str(mount)))


def check_config(path: Path) -> None:
    result = subprocess.run([str(amtool()), "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def alerting(base_url: str, **overrides: Any) -> AlertingSettings:
    document: dict[str, Any] = {
        "receivers": [
            {"name": "ml-alerts", "webhook": {"url": f"{base_url}/default"}},
            {"name": "platform-pager", "webhook": {"url": f"{base_url}/pager", "bearerToken": "pager-token"}},
            {"name": "fraud-team", "webhook": {"url": f"{base_url}/fraud"}},
        ],
        "defaultReceiver": "ml-alerts",
        "criticalReceiver": "platform-pager",
        "teams": [{"team": "fraud", "models": ["fraud-detector"], "receiver": "fraud-team"}],
        # The platform's 30 s default would only make the test wait.
        "groupWait": "1s",
    }
    document.update(overrides)
    return AlertingSettings.model_validate(document)


def test_committed_prod_stack_renders_a_config_amtool_accepts(tmp_path):
    """What `mlops render --stack prod` puts into the chart values, merged as Helm does: valid, with
    every credential a file of the mounted Secret and the Secret's values Pulumi secrets."""
    rendering = render(PROJECT_DIR, "prod")
    chart = next(r for r in rendering.resources if r.type == "kubernetes:helm.sh/v4:Chart" and r.inputs.get("chart") == "kube-prometheus-stack")
    values = chart.inputs["values"]["alertmanager"]
    assert values["alertmanagerSpec"]["secrets"] == [CREDENTIALS_SECRET]
    assert "[secret]" not in json.dumps(values["config"]), "credentials must stay out of the configuration (files only)"
    check_config(write_config(tmp_path / "alertmanager.yaml", values["config"]))
    (secret,) = [m for _, m in rendering.manifests() if m["kind"] == "Secret" and m["metadata"]["name"] == CREDENTIALS_SECRET]
    assert secret["stringData"] == {
        "platform-pager-pagerduty-routing-key": "[secret]",
        "ml-alerts-slack-api-url": "[secret]",
        "fraud-team-webhook-token": "[secret]",
    }


def route(config_path: Path, *labels: str) -> str:
    result = subprocess.run(
        [str(amtool()), "config", "routes", "test", f"--config.file={config_path}", *labels],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=MlopsModelCanaryErrorGate", "severity=critical", "model=fraud-detector"), "platform-pager"),
        (("alertname=MlopsDatasetDrift", "severity=warning", "model=fraud-detector"), "fraud-team"),
        (("alertname=MlopsDatasetDrift", "severity=warning", "model=churn"), "ml-alerts"),
        (("alertname=MlopsPerformanceDrop", "severity=critical", "model=churn"), "platform-pager"),
        (("alertname=KubePodCrashLooping", "severity=warning", "namespace=kube-system"), "ml-alerts"),
        (("alertname=Watchdog", "severity=none"), "null"),
        ((f"alertname={PROMOTED_ALERT}", "severity=info", "model=fraud-detector"), "null"),
    ],
)
def test_routes_by_severity_and_team(tmp_path, labels, receiver):
    path = write_config(tmp_path / "alertmanager.yaml", alertmanager_files(alerting("http://127.0.0.1:9")).config)
    assert route(path, *labels) == receiver


def test_team_pager_takes_the_team_critical_alerts(tmp_path):
    settings = alerting(
        "http://127.0.0.1:9",
        teams=[{"team": "fraud", "models": ["fraud-detector"], "receiver": "fraud-team", "criticalReceiver": "fraud-team"}],
    )
    path = write_config(tmp_path / "alertmanager.yaml", alertmanager_files(settings).config)
    assert route(path, "alertname=MlopsModelCanaryErrorGate", "severity=critical", "model=fraud-detector") == "fraud-team"


def test_credentials_are_read_from_the_mounted_secret():
    files = alertmanager_files(alerting("http://127.0.0.1:9"))
    pager = next(r for r in files.config["receivers"] if r["name"] == "platform-pager")
    token_file = pager["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"]
    assert token_file == credential_path("platform-pager-webhook-token")
    assert token_file.startswith(f"/etc/alertmanager/secrets/{CREDENTIALS_SECRET}/")
    assert files.credentials == {"platform-pager-webhook-token": "pager-token"}


class Deliveries:
    """A local webhook receiver: every POST body, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.authorization: dict[str, set[str]] = {}
        self.lock = threading.Lock()

    def alerts(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [alert for at, body in self.received if at == path for alert in body["alerts"]]


@pytest.fixture
def webhook() -> Iterator[tuple[str, Deliveries]]:
    deliveries = Deliveries()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with deliveries.lock:
                deliveries.received.append((self.path, body))
                deliveries.authorization.setdefault(self.path, set()).add(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", deliveries
    server.shutdown()
    server.server_close()


@pytest.fixture
def revisions() -> Iterator[list[dict[str, Any]]]:
    """fraud-detector: stable version 6 healthy, canary version 7 failing one request in ten."""
    with revision_targets(
        [Revision(NAMESPACE, "fraud-detector", "6", 18.0), Revision(NAMESPACE, "fraud-detector", "7", 4.0, error_share=0.1)]
    ) as scrape_configs:
        yield scrape_configs


def drift_result(model: str, version: str) -> DriftResult:
    features = tuple(
        ColumnVerdict(name, "num", "ks", score, 0.05, score < 0.05) for name, score in (("amount", 0.001), ("age", 0.002), ("country", 0.4))
    )
    return DriftResult(
        model=model,
        version=version,
        window=Window.ending(datetime.now(timezone.utc), 24),
        reference_rows=1000,
        current_rows=800,
        features=features,
        drift_share=2 / 3,
        dataset_drifted=True,
        prediction=None,
        performance=None,
    )


@pytest.mark.server
def test_prometheus_fires_drift_and_canary_gate_alerts_that_reach_the_receivers(tmp_path, webhook, revisions):
    base_url, deliveries = webhook
    model = declaration()
    rules_path = tmp_path / "model-rules.yaml"
    rules_path.write_text(yaml.safe_dump(prometheus_rule_spec(model, NAMESPACE), sort_keys=False))
    config_path = write_config(tmp_path / "alertmanager.yaml", mounted(alertmanager_files(alerting(base_url)), tmp_path))
    check_config(config_path)
    with (
        AlertmanagerServer.start(tmp_path, config_path) as alertmanager,
        PushgatewayServer.start(tmp_path) as gateway,
        PrometheusServer.start(
            tmp_path,
            scrape_targets=[gateway.address],
            scrape_configs=revisions,
            rule_files=[DRIFT_RULES, rules_path],
            alertmanagers=[alertmanager.address],
        ),
    ):
        push_results(gateway.url, drift_result("fraud-detector", "7"), datetime.now(timezone.utc))
        push_results(gateway.url, drift_result("churn", "3"), datetime.now(timezone.utc))

        def delivered(path: str, alertname: str, model_name: str) -> dict[str, Any] | None:
            return next(
                (a for a in deliveries.alerts(path) if a["labels"]["alertname"] == alertname and a["labels"]["model"] == model_name),
                None,
            )

        gate = wait_for("the canary error gate at the pager", lambda: delivered("/pager", "MlopsModelCanaryErrorGate", "fraud-detector"), 60)
        drift = wait_for("fraud-detector's drift at its team", lambda: delivered("/fraud", "MlopsDatasetDrift", "fraud-detector"), 60)
        other = wait_for("churn's drift at the default receiver", lambda: delivered("/default", "MlopsDatasetDrift", "churn"), 60)
    assert gate["status"] == "firing" and gate["labels"]["model_version"] == "7" and gate["labels"]["severity"] == "critical"
    assert "mlops rollback fraud-detector" in gate["annotations"]["runbook"]
    for alert, version in ((drift, "7"), (other, "3")):
        assert alert["labels"]["version"] == version
        assert alert["annotations"]["runbook"].startswith("Read the drift report")
    # Warnings of a team's model never page; a team's alert never reaches the default receiver.
    assert not [a for a in deliveries.alerts("/pager") if a["labels"]["severity"] != "critical"]
    assert not [a for a in deliveries.alerts("/default") if a["labels"]["model"] == "fraud-detector"]
    # The pager's bearer token came from the credentials file, not from the configuration.
    assert deliveries.authorization["/pager"] == {"Bearer pager-token"}


@pytest.mark.server
def test_a_promoted_model_inhibits_its_canary_gate_alerts(tmp_path, webhook):
    base_url, _ = webhook
    promoted = declaration(canary={"trafficPercent": 100, "previousVersion": "6"})
    promoted_rule = next(r for g in prometheus_rule_spec(promoted, NAMESPACE)["groups"] for r in g["rules"] if r["alert"] == PROMOTED_ALERT)
    config_path = write_config(tmp_path / "alertmanager.yaml", mounted(alertmanager_files(alerting(base_url)), tmp_path))
    gate_labels = {"alertname": "MlopsModelCanaryErrorGate", "namespace": NAMESPACE, "model": "fraud-detector", "model_version": "7", "severity": "critical"}
    other_model = {**gate_labels, "model": "churn"}
    with AlertmanagerServer.start(tmp_path, config_path) as alertmanager:
        posted = httpx.post(
            f"{alertmanager.url}/api/v2/alerts",
            json=[{"labels": {"alertname": PROMOTED_ALERT, **promoted_rule["labels"]}}, {"labels": gate_labels}, {"labels": other_model}],
            timeout=5,
        )
        assert posted.status_code == 200, posted.text

        def states() -> dict[str, str] | None:
            alerts = httpx.get(f"{alertmanager.url}/api/v2/alerts", timeout=5).json()
            found = {(a["labels"]["alertname"], a["labels"]["model"]): a["status"]["state"] for a in alerts}
            return found if len(found) == 3 and "unprocessed" not in found.values() else None

        found = wait_for("Alertmanager to process the alerts", states, 30)
    assert found[("MlopsModelCanaryErrorGate", "fraud-detector")] == "suppressed"
    assert found[("MlopsModelCanaryErrorGate", "churn")] == "active"
    assert found[(PROMOTED_ALERT, "fraud-detector")] == "active"
