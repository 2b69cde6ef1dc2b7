"""Model metrics from real servers, and every query the platform renders for a model against them.

Real MLServer 1.7.1 (its own virtualenv) serves an MLflow model as two versions, stable v1 and
canary v2; the real KServe 0.21 Python server serves an sklearn model. Each model server sits behind
a queue-proxy stand-in (tests/runtime/queue_proxy.py: the queue-proxy is a Go binary, so its
exposition is written from the pinned source's definitions). One real Prometheus scrapes the
stand-ins and the model servers' own /metrics, with the labels the platform's PodMonitor relabelling
gives them, and evaluates the rendered rule groups itself. Requests are real, some failing (inputs
the model cannot take: the servers answer 500).

Proves: every alert rule evaluates without error and fires exactly where the traffic says it must;
every dashboard query returns data with the values the traffic implies; the canary gates judge the
canary from the same series (rollback: 20 % 5xx against a 1 % gate), each gate's query returns the
value the gate reports.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import joblib
import mlflow.sklearn
import numpy as np
import pytest
import yaml
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from monitoring import catalog
from monitoring.canary.gates import Gates, Prometheus, evaluate
from monitoring.model_watch import WatchedCanary, WatchedModel, dashboard, rule_group
from tests.runtime.model_servers import KServeSklearnServer, MLServer
from tests.runtime.queue_proxy import QueueProxyStandIn
from tests.runtime.servers import PrometheusServer, wait_for

pytestmark = pytest.mark.server

NAMESPACE = "mlops-serving"
GATES = Gates(max_error_rate=0.01, max_p99_latency_ms=500, min_request_count=20, window="5m")
FRAUD = WatchedModel(
    namespace=NAMESPACE, model="fraud", server="mlserver", availability=0.999, p99_latency_ms=500,
    drift_share_threshold=0.3, retraining_policy="webhook", retraining_trigger="http://retrain.example/fraud",
    canary=WatchedCanary(version="v2", traffic_percent=25, gates=GATES),
)
CHURN = WatchedModel(
    namespace=NAMESPACE, model="churn", server="kserve", availability=0.99, p99_latency_ms=500,
    drift_share_threshold=0.3, retraining_policy="never", retraining_trigger="none",
)
# Requests sent through each revision's queue-proxy: (model, version) -> (answered, failed).
TRAFFIC = {("fraud", "v1"): (30, 0), ("fraud", "v2"): (20, 5), ("churn", "v3"): (24, 6)}
FEATURES = 3
SCRAPE_SECONDS = 1.0  # PrometheusServer's scrape and evaluation interval
# rate() and increase() extrapolate each series towards the window's start by up to half a scrape
# interval: over the few seconds of samples here, values agree with the counts sent within this.
RATE_TOLERANCE = 0.15


@dataclass
class Revision:
    model: str
    version: str
    server: MLServer | KServeSklearnServer
    proxy: QueueProxyStandIn

    @property
    def labels(self) -> dict[str, str]:
        """What the platform's PodMonitor relabelling puts on every series scraped from the pod."""
        return {"namespace": NAMESPACE, "model": self.model, "model_version": self.version, "revision": f"{self.model}-predictor-{self.version}"}


def train(workdir: Path) -> tuple[Path, Path]:
    """A tiny classifier, saved as an MLflow model (with its input signature, which MLServer's MLflow
    runtime decodes requests by) and as the joblib file the sklearn runtime loads."""
    features = np.random.default_rng(7).normal(size=(200, FEATURES))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(features, labels)
    mlflow_dir = workdir / "fraud-mlflow"
    mlflow.sklearn.save_model(model, str(mlflow_dir), signature=infer_signature(features, model.predict(features)))
    joblib_dir = workdir / "churn-sklearn"
    joblib_dir.mkdir()
    joblib.dump(model, joblib_dir / "model.joblib")
    return mlflow_dir, joblib_dir


def v2_request(rows: list[list[float]] | list[list[str]]) -> dict:
    datatype = "BYTES" if isinstance(rows[0][0], str) else "FP64"
    flat = [value for row in rows for value in row]
    return {"inputs": [{"name": "features", "shape": [len(rows), len(rows[0])], "datatype": datatype, "data": flat}]}


GOOD_ROWS = [[0.5, -1.0, 2.0]]
BAD_ROWS = [[0.5, -1.0]]  # two features where the model takes three: both servers answer 500


def infer(client: httpx.Client, revision: Revision, rows: list[list[float]]) -> int:
    if isinstance(revision.server, MLServer):
        flat = [value for row in rows for value in row]
        body = {"inputs": [{"name": "features", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": flat}]}
        response = client.post(f"/v2/models/{revision.model}/infer", json=body)
    else:
        response = client.post(f"/v1/models/{revision.model}:predict", json={"instances": rows})
    return response.status_code


def send(revision: Revision, answered: int, failed: int) -> None:
    with httpx.Client(base_url=revision.proxy.url, timeout=30.0) as client:
        statuses = [infer(client, revision, GOOD_ROWS) for _ in range(answered)] + [infer(client, revision, BAD_ROWS) for _ in range(failed)]
    assert statuses == [200] * answered + [500] * failed, (revision.model, revision.version, statuses)


def scraped_requests(prometheus: PrometheusServer) -> float:
    result = prometheus.query(f"sum({catalog.QUEUE_PROXY_REQUEST_DURATION.name}_count)")
    return float(result[0]["value"][1]) if result else 0.0


@dataclass
class Stack:
    prometheus: PrometheusServer
    revisions: list[Revision]
    at: float  # the last scrape after the traffic: no extrapolation past the data

    def query(self, expr: str) -> list[dict]:
        body = self.prometheus.api("query", query=expr, time=f"{self.at:.3f}").json()
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("model-metrics")
    mlflow_dir, joblib_dir = train(workdir)
    rules = workdir / "model-rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [rule_group(FRAUD), rule_group(CHURN)]}, sort_keys=False))
    started: list = []
    try:
        fraud_v1 = MLServer.launch(workdir, "fraud", mlflow_dir, "v1")
        started.append(fraud_v1)
        fraud_v2 = MLServer.launch(workdir, "fraud", mlflow_dir, "v2")
        started.append(fraud_v2)
        churn = KServeSklearnServer.launch(workdir, "churn", joblib_dir)
        started.append(churn)
        for server in (fraud_v1, fraud_v2, churn):
            server.wait_ready()
        revisions = [
            Revision("fraud", "v1", fraud_v1, QueueProxyStandIn(fraud_v1.url)),
            Revision("fraud", "v2", fraud_v2, QueueProxyStandIn(fraud_v2.url)),
            Revision("churn", "v3", churn, QueueProxyStandIn(churn.url)),
        ]
        started += [revision.proxy for revision in revisions]
        jobs = [
            {"job_name": "queue-proxy", "static_configs": [{"targets": [r.proxy.address], "labels": r.labels} for r in revisions]},
            {"job_name": "model-server", "static_configs": [{"targets": [r.server.metrics_address], "labels": r.labels} for r in revisions]},
        ]
        prometheus = PrometheusServer.start(workdir, rule_files=[rules], scrape_configs=jobs)
        started.append(prometheus)
        # Exporters show a series only after its first observation, and rate() counts from the first
        # scraped sample: one request of each outcome first, scraped, so the measured traffic after
        # it is counted whole (as in a cluster, where a revision serves long before it is judged).
        warm_up = {key: (1, 1 if failed else 0) for key, (answered, failed) in TRAFFIC.items()}
        for revision in revisions:
            send(revision, *warm_up[(revision.model, revision.version)])
        warm_total = sum(a + f for a, f in warm_up.values())
        wait_for(f"{warm_total} warm-up requests scraped", lambda: scraped_requests(prometheus) == warm_total, timeout=30)
        time.sleep(3 * SCRAPE_SECONDS)
        for revision in revisions:
            send(revision, *TRAFFIC[(revision.model, revision.version)])
        total = warm_total + sum(a + f for a, f in TRAFFIC.values())
        wait_for(f"{total} requests scraped", lambda: scraped_requests(prometheus) == total, timeout=30)
        # Rules evaluate every second: a few rounds on the final counts. The samples then span at least
        # six scrapes, so increase() extrapolates each series by at most half a scrape interval (< 10 %).
        time.sleep(3 * SCRAPE_SECONDS)
        last_scrape = prometheus.query(f"max(timestamp({catalog.QUEUE_PROXY_REQUEST_DURATION.name}_count))")
        yield Stack(prometheus, revisions, float(last_scrape[0]["value"][1]))
    finally:
        for server in reversed(started):
            server.stop()


def by_version(result: list[dict]) -> dict[str, float]:
    return {series["metric"].get("model_version", ""): float(series["value"][1]) for series in result}


def measured(model: str, version: str) -> tuple[int, int]:
    return TRAFFIC[(model, version)]


# Which of each model's alerts the traffic must make active (pending or firing): the 5xx ratios are
# 5/55 for fraud (budget 0.1 %) and 6/30 for churn (budget 1 %), far above both burn-rate thresholds;
# the canary's 5/25 is above its 1 % gate; every answer takes milliseconds, far below 500 ms; the
# canary gets traffic; no drift job has run.
ACTIVE = {
    "fraud": {"MlopsModelSloBurnRateFast", "MlopsModelSloBurnRateSlow", "MlopsModelCanaryErrorGate"},
    "churn": {"MlopsModelSloBurnRateFast", "MlopsModelSloBurnRateSlow"},
}


def test_model_rules_evaluate_and_fire_where_the_traffic_says(stack):
    """Prometheus evaluates every rendered rule without error; exactly the expected alerts are active,
    the canary gate with the canary's version label."""
    groups = {group["name"]: group for group in stack.prometheus.rule_groups()}
    for watched in (FRAUD, CHURN):
        rules = groups[f"mlops-model-{watched.model}"]["rules"]
        assert [rule["name"] for rule in rules if rule["health"] != "ok"] == [], rules
        active = {rule["name"] for rule in rules if rule["state"] in ("pending", "firing")}
        assert active == ACTIVE[watched.model], watched.model
    gate = next(rule for rule in groups["mlops-model-fraud"]["rules"] if rule["name"] == "MlopsModelCanaryErrorGate")
    assert gate["state"] == "firing" and [alert["labels"]["model_version"] for alert in gate["alerts"]] == ["v2"]
    assert float(gate["alerts"][0]["value"]) == pytest.approx(5 / 25, rel=RATE_TOLERANCE)


def panel_results(stack: Stack, watched: WatchedModel) -> dict[str, list[list[dict]]]:
    return {
        panel["title"]: [stack.query(target["expr"]) for target in panel["targets"]]
        for panel in dashboard(watched)["panels"]
    }


SERVING_AND_SERVER_PANELS = 6  # the first six panels: queue-proxy traffic, errors, latency; the server's own view
DRIFT_PANELS = {"Dataset drift share", "Feature drift scores", "Payload records written", "Drift job status"}


def test_every_serving_panel_returns_data(stack):
    """Each serving and model-server query of both dashboards answers with a series per version
    that served it."""
    for watched, versions in ((FRAUD, {"v1", "v2"}), (CHURN, {"v3"})):
        panels = panel_results(stack, watched)
        assert set(list(panels)[SERVING_AND_SERVER_PANELS:]) == DRIFT_PANELS
        for title, results in list(panels.items())[:SERVING_AND_SERVER_PANELS]:
            for result in results:
                assert result, f"{watched.model}: {title} returned nothing"
                if title.startswith("5xx ratio") or "outcome" in title:
                    continue  # versions without failures have no 5xx series
                assert set(by_version(result)) == versions, (watched.model, title, result)


def test_panels_show_the_traffic_that_was_sent(stack):
    """Traffic share 30:25 between stable and canary; 5xx ratio 5/25 on the canary and 6/30 on churn;
    latency in seconds (milliseconds of work, so p99 well under a second); MLServer counts the
    canary's failed inferences; KServe times every prediction."""
    fraud, churn = panel_results(stack, FRAUD), panel_results(stack, CHURN)
    share = by_version(fraud["Traffic share by version"][0])
    assert share["v2"] == pytest.approx(25 / 55, rel=RATE_TOLERANCE) and share["v1"] == pytest.approx(30 / 55, rel=RATE_TOLERANCE)
    assert by_version(fraud["5xx ratio by version"][0]) == {"v2": pytest.approx(5 / 25, rel=RATE_TOLERANCE)}
    assert by_version(churn["5xx ratio by version"][0]) == {"v3": pytest.approx(6 / 30, rel=RATE_TOLERANCE)}
    p50, p99 = (by_version(result) for result in fraud["Latency by version"])
    assert all(0 < value < 1 for value in [*p50.values(), *p99.values()])
    ok, failed = (by_version(result) for result in fraud["MLServer inferences per second by outcome"])
    # MLServer creates both outcome series of a model at its first request: v1's failures are 0.
    assert set(ok) == set(failed) == {"v1", "v2"} and failed["v1"] == 0
    assert failed["v2"] / (ok["v2"] + failed["v2"]) == pytest.approx(5 / 25, rel=RATE_TOLERANCE)
    assert all(0 < value < 1 for value in by_version(fraud["MLServer mean inference time"][0]).values())
    assert 0 < by_version(churn["Model server predict time p99"][0])["v3"] < 1


def test_canary_gates_judge_the_canary_from_the_same_series(stack):
    """20 % 5xx over 25 requests against a 1 % gate: rollback. Every gate reports its value, its
    threshold and the query; each query, run again, returns that value."""
    evaluation = evaluate(Prometheus(stack.prometheus.url, at=stack.at), NAMESPACE, "fraud", "v2", GATES)
    assert evaluation.verdict == "rollback", evaluation
    assert evaluation.canary.requests == pytest.approx(25, rel=RATE_TOLERANCE) and evaluation.canary.errors == pytest.approx(5, rel=RATE_TOLERANCE)
    assert evaluation.stable.requests == pytest.approx(30, rel=RATE_TOLERANCE) and evaluation.stable.errors == 0
    gates = {gate.name: gate for gate in evaluation.gates}
    assert [gates[name].passed for name in ("minRequestCount", "maxErrorRate", "maxP99LatencyMs")] == [True, False, True]
    assert gates["maxErrorRate"].value == pytest.approx(0.2, rel=RATE_TOLERANCE) and gates["maxErrorRate"].threshold == 0.01
    assert gates["maxP99LatencyMs"].threshold == 0.5 and 0 < gates["maxP99LatencyMs"].value < 0.5
    for gate in evaluation.gates:
        (series,) = stack.query(gate.query)
        assert float(series["value"][1]) == pytest.approx(gate.value, rel=RATE_TOLERANCE), gate

