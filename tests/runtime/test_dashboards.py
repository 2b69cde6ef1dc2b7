"""The Grafana dashboards (monitoring/dashboards/*.json) against a real Prometheus and the real exporters.

Proves: each file is Grafana dashboard JSON with the fields Grafana's provisioning needs and a
templated data source; every query is PromQL that a real Prometheus accepts (template variables
substituted); every metric named in the dashboards and the alert rules is one the platform exports
— drift metrics as the real drift job pushes them to a real Pushgateway (and the drift panels
return data from them), collector metrics from the collector's own registry, queue-proxy metrics
from the catalog (monitoring/catalog.py; tests/runtime/test_model_metrics.py proves them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitoring import catalog
from monitoring.drift_job.cli import main as run_drift_job
from serving.collector.metrics import CollectorMetrics
from tests.conftest import PROJECT_DIR
from tests.promql import metric_names
from tests.runtime.payload_samples import labels_for, reference_frame, window_frame, write_partitions
from tests.runtime.servers import PrometheusServer, PushgatewayServer, wait_for

pytestmark = pytest.mark.server

DASHBOARD_DIR = PROJECT_DIR / "monitoring" / "dashboards"
RULES_DIR = PROJECT_DIR / "monitoring" / "rules"
DASHBOARDS = {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "__range_s": "3600"}
PROMETHEUS_BUILTINS = {"ALERTS", "ALERTS_FOR_STATE"}
MODEL = "dash-model"
_TEMPLATE_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def _targets() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (name, panel["title"], target)
        for name, dashboard in DASHBOARDS.items()
        for panel in _panels(dashboard)
        for target in panel["targets"]
    ]


TARGETS = _targets()
TARGET_IDS = [f"{name}:{title}:{target['refId']}" for name, title, target in TARGETS]
RULE_EXPRESSIONS = [
    (path.name, rule.get("alert") or rule.get("record"), rule["expr"])
    for path in sorted(RULES_DIR.glob("*.yaml"))
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
]


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana template variables as Grafana would; an undeclared variable fails the test."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"{expr!r} uses ${name}, which is neither declared nor a Grafana built-in"
        return values[name]

    return _TEMPLATE_VARIABLE.sub(replace, expr)


def _variables(dashboard: dict[str, Any], model: str) -> dict[str, str]:
    values = dict(GRAFANA_BUILTINS)
    for variable in dashboard["templating"]["list"]:
        values[variable["name"]] = {"datasource": "prometheus", "model": model}.get(variable["name"], variable.get("allValue", ".*"))
    return values


# --- structure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_has_what_grafana_provisioning_needs(name: str):
    """uid, title, schemaVersion, time, a templated Prometheus data source, unique panel ids on a
    24-column grid, and every panel and target on `${datasource}` with an `expr`."""
    dashboard = DASHBOARDS[name]
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert dashboard["title"] and dashboard["schemaVersion"] == 39
    assert dashboard["time"] == {"from": "now-6h", "to": "now"}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["title"] and panel["description"], panel["id"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"].strip() and target["refId"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE


def test_platform_overview_covers_collector_drift_jobs_and_serving():
    """The overview shows collector throughput and drops, drift job health and serving totals."""
    exprs = " ".join(t["expr"] for n, _, t in TARGETS if n == "platform-overview.json")
    for needed in ["mlops_collector_events_received_total", "mlops_collector_records_written_total",
                   "mlops_collector_events_dropped_total", "mlops_drift_job_status",
                   "mlops_drift_job_last_success_timestamp_seconds", "kn_serving_invocation_duration_seconds_count",
                   "kn_serving_invocation_duration_seconds_bucket"]:  # fmt: skip
        assert needed in exprs


def test_model_detail_is_per_model_with_canary_latency_errors_and_drift():
    """The model dashboard filters by `$model` and shows p50/p99 latency, throughput and errors by
    model_version (canary vs stable), drift per feature, drift share and performance vs reference."""
    dashboard = DASHBOARDS["model-detail.json"]
    assert {"datasource", "model", "version"} <= {v["name"] for v in dashboard["templating"]["list"]}
    targets = [t["expr"] for n, _, t in TARGETS if n == "model-detail.json"]
    assert all('model="$model"' in expr for expr in targets)
    joined = " ".join(targets)
    for needed in ["histogram_quantile(0.5,", "histogram_quantile(0.99,", "by (model_version)", 'http_response_status_code=~"5.."',
                   "by (version, feature, method) (mlops_drift_feature_score", "mlops_drift_dataset_drift_share",
                   "mlops_drift_performance{", "mlops_drift_performance_reference{"]:  # fmt: skip
        assert needed in joined


# --- against the real servers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, PushgatewayServer, Path]]:
    workdir = tmp_path_factory.mktemp("dashboards")
    with PushgatewayServer.start(workdir) as gateway, PrometheusServer.start(workdir, scrape_targets=[gateway.address]) as prometheus:
        yield prometheus, gateway, workdir


@pytest.fixture(scope="module")
def drift_job_pushed(servers: tuple[PrometheusServer, PushgatewayServer, Path]) -> str:
    """Run the real drift job (drifted window, labels, an unsigned feature the engine skips) so every
    drift metric family is pushed; the Pushgateway's /metrics text afterwards."""
    prometheus, gateway, workdir = servers
    now = datetime.now(timezone.utc)
    reference = reference_frame()
    reference.assign(**{"input.visits": (reference.index % 40).astype("uint16")}).to_parquet(workdir / "reference.parquet", index=False)
    window = window_frame(300, now, shifted=True, model=MODEL)
    window["input.visits"] = (window.index % 40).astype("uint16")
    write_partitions(workdir / "store", window)
    labels_for(window, accuracy=0.7).to_parquet(workdir / "labels.parquet", index=False)
    argv = ["--model", MODEL, "--model-version", "v1", "--reference", str(workdir / "reference.parquet"),
            "--payload-root", str(workdir / "store"), "--window-hours", "1", "--pushgateway", gateway.url,
            "--labels", str(workdir / "labels.parquet"), "--task", "classification"]  # fmt: skip
    assert run_drift_job(argv, environ={}) == 0
    wait_for("Prometheus to scrape the drift metrics", lambda: prometheus.query(f'mlops_drift_performance{{model="{MODEL}"}}'), timeout=20)
    return gateway.metrics_text()


def _drift_job_series(metrics_text: str) -> set[str]:
    return {
        sample.name
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.labels.get("job") == catalog.DRIFT_PUSH_JOB and sample.labels.get("model") == MODEL
        and sample.name.startswith("mlops_")
    }


def _collector_series() -> set[str]:
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    return {
        family.name + suffix
        for family in CollectorMetrics.create().registry.collect()
        for suffix in suffixes[family.type]
    }


def test_catalog_lists_exactly_what_the_drift_job_and_collector_export(drift_job_pushed: str):
    """monitoring/catalog.py is the real export: the drift job's pushed series and the collector's
    registry, name for name."""
    assert _drift_job_series(drift_job_pushed) == catalog.DRIFT_JOB_SERIES
    assert _collector_series() == catalog.COLLECTOR_SERIES


@pytest.mark.parametrize(("dashboard", "title", "target"), TARGETS, ids=TARGET_IDS)
def test_dashboard_query_is_promql_prometheus_accepts(servers: Any, dashboard: str, title: str, target: dict[str, Any]):
    """Prometheus' own parser and evaluator accept the query (a 400 names the syntax error)."""
    prometheus = servers[0]
    prometheus.query(substitute(target["expr"], _variables(DASHBOARDS[dashboard], MODEL)))


@pytest.mark.parametrize(("dashboard", "title", "target"), TARGETS, ids=TARGET_IDS)
def test_every_dashboard_metric_is_exported_by_the_platform(
    servers: Any, drift_job_pushed: str, dashboard: str, title: str, target: dict[str, Any]
):
    """Each metric a query selects is pushed by the drift job, exported by the collector or part of
    the queue-proxy contract; drift-only queries return data from the real job's push."""
    exported = _drift_job_series(drift_job_pushed) | _collector_series() | catalog.SERVING_SERIES
    names = metric_names(target["expr"])
    assert names, f"no metric found in {target['expr']!r}"
    assert names <= exported | PROMETHEUS_BUILTINS, names - exported
    if names <= catalog.DRIFT_JOB_SERIES:
        # Proves the label names used (feature, method, metric, status, version) are the pushed ones.
        expr = substitute(target["expr"], _variables(DASHBOARDS[dashboard], MODEL))
        assert servers[0].query(expr), f"{expr} returns nothing although the drift job pushed its metrics"


@pytest.mark.parametrize(("rule_file", "rule", "expr"), RULE_EXPRESSIONS, ids=[f"{f}:{r}" for f, r, _ in RULE_EXPRESSIONS])
def test_every_rule_metric_is_exported_by_the_platform(drift_job_pushed: str, rule_file: str, rule: str, expr: str):
    """The alert rules select only metrics the drift job, the collector, the queue-proxy or the canary
    guard export (test_canary_guard.py proves the guard's), or Prometheus' own `up`."""
    exported = (
        _drift_job_series(drift_job_pushed) | _collector_series() | catalog.SERVING_SERIES
        | catalog.CANARY_GUARD_SERIES | catalog.PROMETHEUS_SERIES
    )
    names = metric_names(expr)
    assert names and names <= exported, names - exported
