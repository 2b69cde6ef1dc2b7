"""Model metrics from real servers, and every query the platform renders for a model against them.

Real MLServer 1.7.1 (its own virtualenv) serves an MLflow model as two versions, stable v1 and
canary v2; the real KServe 0.21 Python server serves an sklearn model. Each model server sits behind
a queue-proxy stand-in (tests/runtime/queue_proxy.py: the queue-proxy is a Go binary, so its
exposition is written from the pinned source's definitions). One real Prometheus scrapes the
stand-ins and the model servers' own /metrics, with the labels the platform's PodMonitor relabelling
gives them, and evaluates the rendered rule groups itself. Requests are real, some failing (inputs
the model cannot take: the servers answer 500). For the dashboard's payload and drift panels, the
real payload collector receives the logger events of the answered requests (as KServe's logger
posts them) and the real drift job pushes a drifted window of the MLflow model to a real Pushgateway.

Proves: every alert rule evaluates without error and fires exactly where the traffic says it must;
every dashboard query returns data with the values the traffic implies; the canary gates judge the
canary from the same series (rollback: 20 % 5xx against a 1 % gate), each gate's query returns the
value the gate reports.
"""

from __future__ import annotations

import time
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path

import httpx
import joblib
import mlflow.sklearn
import numpy as np
import pytest
import yaml
from mlflow.models import infer_signature
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

from monitoring import catalog
from monitoring.canary.gates import Gates, Prometheus, evaluate
from monitoring.drift_job.cli import main as run_drift_job
from monitoring.model_watch import WatchedCanary, WatchedModel, dashboard, rule_group
from tests.conftest import PROJECT_DIR
from tests.runtime.collector_support import REQUEST, RESPONSE, CollectorProcess, binary_headers
from tests.runtime.model_servers import KServeSklearnServer, MLServer
from tests.runtime.payload_samples import reference_frame, window_frame, write_partitions
from tests.runtime.queue_proxy import QueueProxyStandIn
from tests.runtime.servers import PrometheusServer, PushgatewayServer, wait_for

pytestmark = pytest.mark.server

NAMESPACE = "mlops-serving"
GATES = Gates(max_error_rate=0.01, max_p99_latency_ms=500, min_request_count=20, window="5m")
MLFLOW_MODEL = WatchedModel(
    namespace=NAMESPACE, model="mlflow-model", server="mlserver", availability=0.999, p99_latency_ms=500,
    drift_share_threshold=0.3, retraining_policy="webhook", retraining_trigger="http://retrain.example/mlflow-model",
    canary=WatchedCanary(version="v2", traffic_percent=25, gates=GATES),
)
SKLEARN_MODEL = WatchedModel(
    namespace=NAMESPACE, model="sklearn-model", server="kserve", availability=0.99, p99_latency_ms=500,
    drift_share_threshold=0.3, retraining_policy="never", retraining_trigger="none",
)
# Requests sent through each revision's queue-proxy: (model, version) -> (answered, failed).
TRAFFIC = {(MLFLOW_MODEL.model, "v1"): (30, 0), (MLFLOW_MODEL.model, "v2"): (20, 5), (SKLEARN_MODEL.model, "v3"): (24, 6)}
FEATURES = 3
SCRAPE_SECONDS = 1.0  # PrometheusServer's scrape and evaluation interval
# The platform-wide serving rules and dashboards, evaluated on the same series.
SERVING_SLO_RULES = PROJECT_DIR / "monitoring" / "rules" / "serving-slo.yaml"
DASHBOARDS = PROJECT_DIR / "monitoring" / "dashboards"
# rate() and increase() extrapolate each series to the window's edges: towards the start by up to half
# a scrape interval, towards the evaluation time by up to one (the targets scrape at different phases
# of the second). Over the ~8 s of samples here, values agree with the counts sent within this; the
# verdicts do not hang on it (a 20 % error ratio against a 1 % gate).
RATE_TOLERANCE = 0.25


@dataclass
class Revision:
    model: str
    version: str
    server: MLServer | KServeSklearnServer
    proxy: QueueProxyStandIn

    @property
    def labels(self) -> dict[str, str]:
        """What the platform's PodMonitor relabelling puts on every series scraped from the pod."""
        return dict(zip(catalog.SERVING_LABELS, (NAMESPACE, self.model, self.version, f"{self.model}-predictor-{self.version}"), strict=True))


def train(workdir: Path) -> tuple[Path, Path]:
    """A tiny classifier, saved as an MLflow model (with its input signature, which MLServer's MLflow
    runtime decodes requests by) and as the joblib file the sklearn runtime loads."""
    features = np.random.default_rng(7).normal(size=(200, FEATURES))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(features, labels)
    mlflow_dir = workdir / "mlflow-model"
    mlflow.sklearn.save_model(model, str(mlflow_dir), signature=infer_signature(features, model.predict(features)))
    joblib_dir = workdir / "sklearn-model"
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


def log_payloads(collector: CollectorProcess, revision: Revision, count: int, first: int) -> None:
    """The request and response events KServe's logger posts for `count` answered requests."""
    with httpx.Client(base_url=collector.url, timeout=10.0) as client:
        for n in range(first, first + count):
            event_id = f"{revision.model}-{revision.version}-{n}"
            pair = ((REQUEST, {"instances": GOOD_ROWS}), (RESPONSE, {"predictions": [1]}))
            for event_type, body in pair:
                headers = binary_headers(event_id, event_type, service=revision.model, version=revision.version)
                assert client.post("/", content=json.dumps(body).encode(), headers=headers).status_code == 200


def records_written(prometheus: PrometheusServer) -> float:
    result = prometheus.query(f'sum(mlops_collector_records_written_total{{model="{MLFLOW_MODEL.model}"}})')
    return float(result[0]["value"][1]) if result else 0.0


def push_drift(workdir: Path, gateway: PushgatewayServer) -> None:
    """The real drift job over a drifted window of the MLflow model's payloads, pushed to `gateway`."""
    reference_frame().to_parquet(workdir / "reference.parquet", index=False)
    write_partitions(workdir / "payloads", window_frame(300, datetime.now(timezone.utc), shifted=True, model=MLFLOW_MODEL.model, version="v2"))
    argv = ["--model", MLFLOW_MODEL.model, "--model-version", "v2", "--reference", str(workdir / "reference.parquet"),
            "--payload-root", str(workdir / "payloads"), "--window-hours", "1", "--pushgateway", gateway.url]  # fmt: skip
    assert run_drift_job(argv, environ={}) == 0


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
    rules.write_text(yaml.safe_dump({"groups": [rule_group(MLFLOW_MODEL), rule_group(SKLEARN_MODEL)]}, sort_keys=False))
    started: list = []
    try:
        mlserver_v1 = MLServer.launch(workdir, MLFLOW_MODEL.model, mlflow_dir, "v1")
        started.append(mlserver_v1)
        mlserver_v2 = MLServer.launch(workdir, MLFLOW_MODEL.model, mlflow_dir, "v2")
        started.append(mlserver_v2)
        kserve_server = KServeSklearnServer.launch(workdir, SKLEARN_MODEL.model, joblib_dir)
        started.append(kserve_server)
        for server in (mlserver_v1, mlserver_v2, kserve_server):
            server.wait_ready()
        revisions = [
            Revision(MLFLOW_MODEL.model, "v1", mlserver_v1, QueueProxyStandIn(mlserver_v1.url)),
            Revision(MLFLOW_MODEL.model, "v2", mlserver_v2, QueueProxyStandIn(mlserver_v2.url)),
            Revision(SKLEARN_MODEL.model, "v3", kserve_server, QueueProxyStandIn(kserve_server.url)),
        ]
        started += [revision.proxy for revision in revisions]
        gateway = PushgatewayServer.start(workdir)
        started.append(gateway)
        collector_settings = {
            "COLLECTOR_STORE_URI": str(workdir / "store"),
            "COLLECTOR_SPOOL_DIR": str(workdir / "spool"),
            "COLLECTOR_MODELS": json.dumps([{"inferenceService": MLFLOW_MODEL.model, "version": "v1", "inputNames": ["a", "b", "c"]}]),
            "COLLECTOR_MAX_BATCH_AGE_SECONDS": "1",
        }
        collector = CollectorProcess.start(collector_settings, workdir / "collector.log")
        started.append(collector)
        jobs = [
            {"job_name": "queue-proxy", "static_configs": [{"targets": [r.proxy.address], "labels": r.labels} for r in revisions]},
            {"job_name": "model-server", "static_configs": [{"targets": [r.server.metrics_address], "labels": r.labels} for r in revisions]},
            {"job_name": "collector", "static_configs": [{"targets": [collector.url.removeprefix("http://")]}]},
        ]
        prometheus = PrometheusServer.start(
            workdir, scrape_targets=[gateway.address], rule_files=[rules, SERVING_SLO_RULES], scrape_configs=jobs
        )
        started.append(prometheus)
        mlflow_revisions = [revision for revision in revisions if revision.model == MLFLOW_MODEL.model]
        # Exporters show a series only after its first observation, and rate() counts from the first
        # scraped sample: one request of each outcome first, scraped, so the measured traffic after
        # it is counted whole (as in a cluster, where a revision serves long before it is judged).
        warm_up = {key: (1, 1 if failed else 0) for key, (answered, failed) in TRAFFIC.items()}
        for revision in revisions:
            send(revision, *warm_up[(revision.model, revision.version)])
        for revision in mlflow_revisions:
            log_payloads(collector, revision, 1, first=0)
        warm_total = sum(a + f for a, f in warm_up.values())
        wait_for(f"{warm_total} warm-up requests scraped", lambda: scraped_requests(prometheus) == warm_total, timeout=30)
        wait_for("the warm-up payloads written and scraped", lambda: records_written(prometheus) == len(mlflow_revisions), timeout=30)
        time.sleep(3 * SCRAPE_SECONDS)
        for revision in revisions:
            answered, failed = TRAFFIC[(revision.model, revision.version)]
            send(revision, answered, failed)
            if revision in mlflow_revisions:
                log_payloads(collector, revision, answered, first=1)
        push_drift(workdir, gateway)
        total = warm_total + sum(a + f for a, f in TRAFFIC.values())
        wait_for(f"{total} requests scraped", lambda: scraped_requests(prometheus) == total, timeout=30)
        logged = len(mlflow_revisions) + sum(TRAFFIC[(r.model, r.version)][0] for r in mlflow_revisions)
        wait_for(f"{logged} payload rows written and scraped", lambda: records_written(prometheus) == logged, timeout=30)
        wait_for("the drift job's push scraped", lambda: prometheus.query(f'{catalog.DRIFT_JOB_STATUS}{{model="{MLFLOW_MODEL.model}"}}'), timeout=30)
        # Rules evaluate every second: a few rounds on the final counts.
        time.sleep(3 * SCRAPE_SECONDS)
        last_scrape = prometheus.query(f"max(timestamp({catalog.QUEUE_PROXY_REQUEST_DURATION.name}_count))")
        yield Stack(prometheus, revisions, float(last_scrape[0]["value"][1]))
    finally:
        for server in reversed(started):
            if isinstance(server, CollectorProcess):
                server.kill()
            else:
                server.stop()


def by_version(result: list[dict]) -> dict[str, float]:
    return {series["metric"].get("model_version", ""): float(series["value"][1]) for series in result}


def measured(model: str, version: str) -> tuple[int, int]:
    return TRAFFIC[(model, version)]


# Which of each model's alerts the traffic must make active (pending or firing): the 5xx ratios are
# 5/55 for the MLflow model (budget 0.1 %) and 6/30 for the sklearn model (budget 1 %), far above both burn-rate thresholds;
# the canary's 5/25 is above its 1 % gate; every answer takes milliseconds, far below 500 ms; the
# canary gets traffic; the drift job found the MLflow model's amount and country drifted (share 2/3 >=
# 0.3) and has not run for the sklearn model.
ACTIVE = {
    MLFLOW_MODEL.model: {"MlopsModelSloBurnRateFast", "MlopsModelSloBurnRateSlow", "MlopsModelCanaryErrorGate", "MlopsModelDriftAboveThreshold"},
    SKLEARN_MODEL.model: {"MlopsModelSloBurnRateFast", "MlopsModelSloBurnRateSlow"},
}


@pytest.mark.parametrize("server", sorted(catalog.MODEL_SERVER_FAMILIES))
def test_model_servers_export_the_catalog_families_with_their_labels(stack, server):
    """Each catalog family of a model server is in the server's own /metrics, with exactly the labels
    the catalog lists (histogram `le` aside)."""
    (revision, *_) = [r for r in stack.revisions if isinstance(r.server, MLServer) == (server == "mlserver")]
    text = httpx.get(f"http://{revision.server.metrics_address}/metrics", timeout=10.0).text
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    for family in catalog.MODEL_SERVER_FAMILIES[server]:
        labels = {frozenset(s.labels) - {"le"} for s in samples if s.name in family.series}
        assert labels == {frozenset(family.labels)}, (family.name, labels)


def test_model_rules_evaluate_and_fire_where_the_traffic_says(stack):
    """Prometheus evaluates every rendered rule without error; exactly the expected alerts are active,
    the canary gate with the canary's version label."""
    groups = {group["name"]: group for group in stack.prometheus.rule_groups()}
    for watched in (MLFLOW_MODEL, SKLEARN_MODEL):
        rules = groups[f"mlops-model-{watched.model}"]["rules"]
        assert [rule["name"] for rule in rules if rule["health"] != "ok"] == [], rules
        active = {rule["name"] for rule in rules if rule["state"] in ("pending", "firing")}
        assert active == ACTIVE[watched.model], watched.model
    gate = next(rule for rule in groups[f"mlops-model-{MLFLOW_MODEL.model}"]["rules"] if rule["name"] == "MlopsModelCanaryErrorGate")
    assert gate["state"] == "firing" and [alert["labels"]["model_version"] for alert in gate["alerts"]] == ["v2"]
    assert float(gate["alerts"][0]["value"]) == pytest.approx(5 / 25, rel=RATE_TOLERANCE)


def test_platform_serving_rules_fire_for_the_failing_versions(stack):
    """monitoring/rules/serving-slo.yaml on the same series: the 5 % error-rate alert is pending for
    exactly the two versions that fail 20 %, latency stays quiet, and no-traffic has no yesterday."""
    (group,) = [g for g in stack.prometheus.rule_groups() if g["name"] == "mlops-serving-slo"]
    rules = {rule["name"]: rule for rule in group["rules"]}
    assert all(rule["health"] == "ok" for rule in rules.values()), rules
    failing = {(a["labels"]["model"], a["labels"]["model_version"]) for a in rules["MlopsModelHighErrorRate"]["alerts"]}
    assert failing == {(MLFLOW_MODEL.model, "v2"), (SKLEARN_MODEL.model, "v3")}
    assert rules["MlopsModelHighLatencyP99"]["state"] == rules["MlopsModelNoTraffic"]["state"] == "inactive"


def static_serving_targets() -> list[tuple[str, str, str]]:
    """(dashboard, panel, expr) of the shipped dashboards' queue-proxy queries."""
    targets = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            targets += [(path.name, panel["title"], t["expr"]) for t in panel.get("targets", []) if catalog.QUEUE_PROXY_REQUEST_DURATION.name in t["expr"]]
    return targets


def test_shipped_dashboards_serving_panels_return_the_models(stack):
    """The model-detail and platform-overview dashboards' serving queries, with Grafana's variables
    filled in, return a series for each model (overview) or version (model detail)."""
    targets = static_serving_targets()
    assert {dashboard for dashboard, _, _ in targets} == {"model-detail.json", "platform-overview.json"}
    for dashboard, title, expr in targets:
        result = stack.query(expr.replace("$model", MLFLOW_MODEL.model).replace("$__rate_interval", "1m"))
        if dashboard == "model-detail.json":
            expected = {"v2"} if "5.." in expr else {"v1", "v2"}
            assert {series["metric"]["model_version"] for series in result} == expected, (title, result)
        else:
            models = {series["metric"]["model"] for series in result}
            assert {MLFLOW_MODEL.model, SKLEARN_MODEL.model} <= models, (title, result)


def panel_results(stack: Stack, watched: WatchedModel) -> dict[str, list[list[dict]]]:
    return {
        panel["title"]: [stack.query(target["expr"]) for target in panel["targets"]]
        for panel in dashboard(watched)["panels"]
    }


SERVING_AND_SERVER_PANELS = 6  # queue-proxy traffic, errors, latency; the model server's own view
PAYLOAD_AND_DRIFT_PANELS = ("Dataset drift share", "Feature drift scores", "Payload records written", "Drift job status")


def test_every_panel_returns_data(stack):
    """Every query of the MLflow model's dashboard answers with a series per version that served it
    (payload and drift panels included); the sklearn model's serving and server panels do too, and its
    payload and drift panels stay empty: no collector events or drift run exist for it."""
    for watched, versions in ((MLFLOW_MODEL, {"v1", "v2"}), (SKLEARN_MODEL, {"v3"})):
        panels = panel_results(stack, watched)
        assert tuple(panels)[SERVING_AND_SERVER_PANELS:] == PAYLOAD_AND_DRIFT_PANELS
        for title, results in list(panels.items())[:SERVING_AND_SERVER_PANELS]:
            for result in results:
                assert result, f"{watched.model}: {title} returned nothing"
                if not title.startswith("5xx ratio"):  # versions without failures have no 5xx series
                    assert set(by_version(result)) == versions, (watched.model, title, result)
    mlflow_panels, sklearn_panels = panel_results(stack, MLFLOW_MODEL), panel_results(stack, SKLEARN_MODEL)
    assert all(result for title in PAYLOAD_AND_DRIFT_PANELS for result in mlflow_panels[title]), mlflow_panels
    assert not any(result for title in PAYLOAD_AND_DRIFT_PANELS for result in sklearn_panels[title])


def test_panels_show_the_traffic_that_was_sent(stack):
    """Traffic share 30:25 between stable and canary; 5xx ratio 5/25 on the canary and 6/30 on the sklearn model;
    latency in seconds (milliseconds of work, so p99 well under a second); MLServer counts the
    canary's failed inferences; KServe times every prediction; the collector wrote a row per answered
    request (30:20); the drift job found 2 of 3 features drifted and reported ok."""
    mlflow_panels, sklearn_panels = panel_results(stack, MLFLOW_MODEL), panel_results(stack, SKLEARN_MODEL)
    share = by_version(mlflow_panels["Traffic share by version"][0])
    assert share["v2"] == pytest.approx(25 / 55, rel=RATE_TOLERANCE) and share["v1"] == pytest.approx(30 / 55, rel=RATE_TOLERANCE)
    assert by_version(mlflow_panels["5xx ratio by version"][0]) == {"v2": pytest.approx(5 / 25, rel=RATE_TOLERANCE)}
    assert by_version(sklearn_panels["5xx ratio by version"][0]) == {"v3": pytest.approx(6 / 30, rel=RATE_TOLERANCE)}
    p50, p99 = (by_version(result) for result in mlflow_panels["Latency by version"])
    assert all(0 < value < 1 for value in [*p50.values(), *p99.values()])
    ok, failed = (by_version(result) for result in mlflow_panels["MLServer inferences per second by outcome"])
    # MLServer creates both outcome series of a model at its first request: v1's failures are 0.
    assert set(ok) == set(failed) == {"v1", "v2"} and failed["v1"] == 0
    assert failed["v2"] / (ok["v2"] + failed["v2"]) == pytest.approx(5 / 25, rel=RATE_TOLERANCE)
    assert all(0 < value < 1 for value in by_version(mlflow_panels["MLServer mean inference time"][0]).values())
    assert 0 < by_version(sklearn_panels["Model server predict time p99"][0])["v3"] < 1
    written = {series["metric"]["version"]: float(series["value"][1]) for series in mlflow_panels["Payload records written"][0]}
    assert written["v2"] / (written["v1"] + written["v2"]) == pytest.approx(20 / 50, rel=RATE_TOLERANCE)
    (share,) = mlflow_panels["Dataset drift share"][0]
    assert float(share["value"][1]) == pytest.approx(2 / 3)
    assert [series["metric"]["status"] for series in mlflow_panels["Drift job status"][0]] == ["ok"]


def test_canary_gates_judge_the_canary_from_the_same_series(stack):
    """20 % 5xx over 25 requests against a 1 % gate: rollback. Every gate reports its value, its
    threshold and the query; each query, run again, returns that value."""
    evaluation = evaluate(Prometheus(stack.prometheus.url, at=stack.at), NAMESPACE, MLFLOW_MODEL.model, "v2", GATES)
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


