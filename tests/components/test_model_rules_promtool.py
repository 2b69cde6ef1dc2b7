"""`promtool test rules` on the alert rules each ModelDeployment renders: every alert fires on the
series that should fire it, and resolves when they recover (the rules monitoring/rules/ ships have
their own test files next to them)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from components.model.observability import prometheus_rule_spec
from monitoring import catalog
from tests.components.test_model_deployment import declaration

NAMESPACE = "mlops-serving"
# The queue-proxy's series as the model's PodMonitor scrapes them: the exporter's labels (status code,
# OTel scope; monitoring/catalog.py cites where they are defined) plus the PodMonitor's.
FAMILY = catalog.QUEUE_PROXY_REQUEST_DURATION.name
SERIES = f'namespace="{NAMESPACE}",model="fraud-detector",otel_scope_name="{catalog.QUEUE_PROXY_SCOPE}",otel_scope_schema_url="",otel_scope_version=""'


def requests(version: str, status: int, values: str) -> dict[str, str]:
    return {"series": f'{FAMILY}_count{{{SERIES},model_version="{version}",http_response_status_code="{status}"}}', "values": values}


def latency(version: str, le_seconds: str, values: str) -> dict[str, str]:
    return {"series": f'{FAMILY}_bucket{{{SERIES},model_version="{version}",http_response_status_code="200",le="{le_seconds}"}}', "values": values}


@pytest.fixture(scope="module")
def rules() -> dict[str, dict[str, Any]]:
    spec = prometheus_rule_spec(declaration(), NAMESPACE)
    return {rule["alert"]: rule for group in spec["groups"] for rule in group["rules"]}


def firing(rule: dict[str, Any], description: str | None = None) -> list[dict[str, Any]]:
    annotations = dict(rule["annotations"])
    if description is not None:
        annotations["description"] = description
    return [{"exp_labels": rule["labels"], "exp_annotations": annotations}]


def checks(rules: dict[str, dict[str, Any]], alert: str, fired_at: str, resolved_at: str, description: str | None = None) -> list[dict]:
    return [
        {"eval_time": fired_at, "alertname": alert, "exp_alerts": firing(rules[alert], description)},
        {"eval_time": resolved_at, "alertname": alert, "exp_alerts": []},
    ]


def test_every_model_alert_fires_and_resolves(rules, tmp_path):
    canary_trouble = {
        # Canary v7: 10 % 5xx and every request between 250 and 500 ms until t=40m, then healthy.
        # Stable v6: healthy and fast throughout.
        "name": "a failing, slow canary fires its gates, the latency SLO and the slow burn; all resolve",
        "interval": "1m",
        "input_series": [
            requests("7", 200, "0+54x100"),
            requests("7", 500, "0+6x40 240x60"),
            requests("6", 200, "0+540x100"),
            latency("7", "0.25", "0x40 0+60x60"),
            latency("7", "0.5", "0+60x100"),
            latency("7", "+Inf", "0+60x100"),
            latency("6", "0.25", "0+540x100"),
            latency("6", "0.5", "0+540x100"),
            latency("6", "+Inf", "0+540x100"),
        ],
        "alert_rule_test": [
            *checks(rules, "MlopsModelCanaryErrorGate", "20m", "70m"),
            *checks(rules, "MlopsModelCanaryLatencyGate", "20m", "70m"),
            # All traffic: 540 of 600 requests a minute under 250 ms, the rest under 500: p99 475 ms.
            *checks(rules, "MlopsModelLatencySlo", "30m", "70m", "p99 over 10m is 475ms."),
            # 6 of 600 requests fail: 1 %, above the slow threshold (6 x 0.1 %), below the fast one.
            *checks(rules, "MlopsModelSloBurnRateSlow", "35m", "95m"),
            {"eval_time": "35m", "alertname": "MlopsModelSloBurnRateFast", "exp_alerts": []},
        ],
    }
    outage = {
        "name": "half of all requests failing burns the budget fast, until they stop",
        "interval": "1m",
        "input_series": [
            requests("7", 200, "0+300x40"),
            requests("7", 500, "0+300x10 3000x30"),
        ],
        "alert_rule_test": checks(rules, "MlopsModelSloBurnRateFast", "8m", "30m"),
    }
    canary_starved = {
        "name": "a canary that gets no traffic while stable serves is reported, until requests reach it",
        "interval": "1m",
        "input_series": [requests("6", 200, "0+100x60"), requests("7", 200, "_x30 0+10x30")],
        "alert_rule_test": checks(rules, "MlopsModelCanaryNoTraffic", "25m", "50m"),
    }
    drift = {
        "name": "dataset drift share at the threshold alerts until a run finds less",
        "interval": "1m",
        "input_series": [{"series": 'mlops_drift_dataset_drift_share{model="fraud-detector",version="7"}', "values": "0.6x20 0.2x20"}],
        "alert_rule_test": checks(rules, "MlopsModelDriftAboveThreshold", "10m", "30m"),
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(prometheus_rule_spec(declaration(), NAMESPACE)))
    (tmp_path / "rules_test.yaml").write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [canary_trouble, outage, canary_starved, drift]},
            sort_keys=False,
        )
    )
    tested = {test["alertname"] for case in (canary_trouble, outage, canary_starved, drift) for test in case["alert_rule_test"]}
    assert tested == set(rules), "every rendered alert has a case"
    completed = subprocess.run(["promtool", "test", "rules", "rules_test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_a_promoted_model_has_no_canary_gate_alerts():
    promoted = declaration(canary={"trafficPercent": 100})
    spec = prometheus_rule_spec(promoted, NAMESPACE)
    assert not [rule["alert"] for group in spec["groups"] for rule in group["rules"] if "Canary" in rule["alert"]]
