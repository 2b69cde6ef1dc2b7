"""Every PromQL expression the platform ships or renders names only metrics in monitoring/catalog.py.

Covers the rules in monitoring/rules/, the dashboards in monitoring/dashboards/, and what each model
declared in the dev and prod stacks renders in every format: its PrometheusRule, its dashboard, and
the canary gate queries `mlops canary analyze` and the canary guard run. The catalog itself is held to
real servers elsewhere (tests/runtime/test_model_metrics.py, test_dashboards.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.declarations import ModelDeployment
from components.model.observability import dashboard, prometheus_rule_spec
from monitoring import catalog
from monitoring.canary.gates import Gates, gate_results, selector, side_metrics
from monitoring.model_watch import PROMOTED_ALERT
from tests.conftest import PROJECT_DIR
from tests.promql import metric_names

NAMESPACE = "mlops-serving"
PROMETHEUS_BUILTINS = {"ALERTS", "ALERTS_FOR_STATE"}


def declared_models() -> list[ModelDeployment]:
    """The models the dev and prod stacks declare, each in every format the platform serves."""
    models = []
    for stack in ("dev", "prod"):
        config = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
        for document in config["mlops:models"]:
            for model_format in ("mlflow", "sklearn", "xgboost"):
                # Only MLflow models batch-score (pyfunc); the other formats are served without it.
                declared = {k: v for k, v in document.items() if k != "batch" or model_format == "mlflow"}
                models.append(ModelDeployment.model_validate({**declared, "format": model_format}))
    return models


class RecordingPrometheus:
    """Answers every query with one value and remembers it: the gate queries as they are sent."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def scalar(self, expr: str) -> float:
        self.queries.append(expr)
        return 1.0


def gate_queries() -> list[str]:
    prometheus = RecordingPrometheus()
    gates = Gates(max_error_rate=0.01, max_p99_latency_ms=250, min_request_count=1, window="10m")
    matchers = selector(NAMESPACE, "fraud", "7")
    canary = side_metrics(prometheus, matchers, gates.window)  # type: ignore[arg-type]
    return prometheus.queries + [gate.query for gate in gate_results(canary, gates, matchers)]


def rendered_expressions() -> list[tuple[str, str]]:
    expressions = []
    for path in sorted((PROJECT_DIR / "monitoring" / "rules").glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            expressions += [(f"{path.name}:{rule.get('alert') or rule.get('record')}", rule["expr"]) for rule in group["rules"]]
    for path in sorted((PROJECT_DIR / "monitoring" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        expressions += [(f"{path.name}:{panel['title']}", t["expr"]) for panel in board["panels"] for t in panel.get("targets", [])]
    for model in declared_models():
        where = f"{model.name}[{model.format}]"
        spec = prometheus_rule_spec(model, NAMESPACE)
        # The promoted alert is a constant (`vector(1)`): it reads no series, only feeds Alertmanager's inhibition.
        expressions += [
            (f"{where}:{rule['alert']}", rule["expr"]) for group in spec["groups"] for rule in group["rules"] if rule["alert"] != PROMOTED_ALERT
        ]
        expressions += [(f"{where}:{p['title']}", t["expr"]) for p in dashboard(model, NAMESPACE)["panels"] for t in p.get("targets", [])]
    expressions += [(f"canary gate query {n}", expr) for n, expr in enumerate(gate_queries())]
    return expressions


EXPRESSIONS = rendered_expressions()


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[where for where, _ in EXPRESSIONS])
def test_expression_names_only_catalog_metrics(where: str, expr: str):
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    assert names <= catalog.ALL_SERIES | PROMETHEUS_BUILTINS, f"{where} names {sorted(names - catalog.ALL_SERIES)}, not in monitoring/catalog.py"


def test_every_model_server_family_is_watched():
    """Each model server's catalog families appear in the dashboard of a model it serves: the catalog
    lists nothing the platform does not use."""
    used = set().union(*(metric_names(expr) for _, expr in EXPRESSIONS))
    assert catalog.SERVING_SERIES - used == {
        # A histogram's sum is exported but no query needs it (rates of buckets and counts do).
        f"{catalog.QUEUE_PROXY_REQUEST_DURATION.name}_sum",
        f"{catalog.KSERVE_PREDICT_DURATION.name}_sum",
    }


def test_an_opencensus_era_name_is_caught():
    """The check bites: the names Knative emitted before 1.19 are not in the catalog."""
    for old in ("sum(rate(revision_request_count[5m]))", "histogram_quantile(0.99, rate(revision_request_latencies_bucket[5m]))"):
        assert metric_names(old) - catalog.ALL_SERIES

