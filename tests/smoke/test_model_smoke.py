"""After `make local-up`: the dev stack's model answers a V2 inference through its route, the
request reaches the payload collector, a drift run pushes its metrics, Prometheus scrapes the model:
the queue-proxy's request histogram (config-observability turns it on) and MLServer's own counters.

The request is built from the demo model's own table (scripts/local/demo_model.py), so its inputs
are the model's signature; the output name is MLServer's for a NumPy prediction ("output-1",
SeldonIO/MLServer 1.7.1 mlserver/codecs/utils.py), the column the reference sample holds.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitoring import catalog
from tests.conftest import PROJECT_DIR, load_script
from tests.runtime.servers import wait_for

SERVING, PLATFORM, MONITORING = "mlops-serving", "mlops-platform", "mlops-monitoring"
MODEL = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]["mlops:models"][0]["name"]
ROWS = 5


def _v2_request() -> dict:
    demo = load_script("scripts/local/demo_model.py")
    table = demo.churn_table(seed=7, shift=0.0, rows=ROWS)
    inputs = [{"name": name, "shape": [ROWS], "datatype": "FP64", "data": table[name].tolist()} for name in demo.FEATURES]
    return {"id": f"smoke-{uuid.uuid4().hex[:8]}", "parameters": {"content_type": "pd"}, "inputs": inputs}


def _metric_samples(text: str, name: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples if sample.name == name]


@pytest.fixture(scope="module")
def inference(host, forward) -> dict:
    """One V2 inference through Kourier with the InferenceService's host name (scale-from-zero included)."""
    status_url = host.run("kubectl -n %s get inferenceservice %s -o jsonpath={.status.url}", SERVING, MODEL)
    assert status_url.rc == 0 and status_url.stdout, status_url.stderr
    route_host = urlsplit(status_url.stdout.strip()).netloc
    with forward("kourier-system", "svc/kourier", 80) as url:
        response = httpx.post(
            f"{url}/v2/models/{MODEL}/infer", json=_v2_request(), headers={"Host": route_host}, timeout=180
        )
    assert response.status_code == 200, response.text[:1000]
    return response.json()


def test_the_model_answers_a_v2_inference_through_its_route(inference):
    [output] = inference["outputs"]
    assert output["name"] == "output-1"
    assert len(output["data"]) == ROWS and set(output["data"]) <= {0, 1}


def test_the_inference_reaches_the_payload_collector(inference, forward):
    def received() -> float:
        with forward(PLATFORM, "svc/payload-collector", 8080) as url:
            text = httpx.get(f"{url}/metrics", timeout=10).text
        return sum(
            s.value for s in _metric_samples(text, "mlops_collector_events_received_total")
            if s.labels.get("model") == MODEL and s.labels.get("event_type") == "request"
        )

    assert wait_for(f"the collector to count a request event of {MODEL}", received, timeout=120) >= 1


def test_a_drift_run_pushes_its_status_to_the_pushgateway(host, inference, forward):
    started = time.time()
    job = f"smoke-drift-{uuid.uuid4().hex[:6]}"
    created = host.run("kubectl -n %s create job %s --from=cronjob/%s-drift", SERVING, job, MODEL)
    assert created.rc == 0, created.stderr
    try:
        def pushed() -> list:
            with forward(MONITORING, "svc/prometheus-pushgateway", 9091) as url:
                text = httpx.get(f"{url}/metrics", timeout=10).text
            times = [s for s in _metric_samples(text, "push_time_seconds") if s.labels.get("model") == MODEL]
            statuses = [s for s in _metric_samples(text, "mlops_drift_job_status") if s.labels.get("model") == MODEL and s.value == 1]
            return statuses if any(s.value >= started for s in times) else []

        [status] = wait_for(f"the drift run of {MODEL} to push its status", pushed, timeout=600, interval=10)
        assert status.labels["status"]
    finally:
        host.run("kubectl -n %s delete job %s --wait=false", SERVING, job)


def test_prometheus_scrapes_the_model(inference, forward):
    def model_targets_up() -> list:
        with forward(MONITORING, "svc/kube-prometheus-stack-prometheus", 9090) as url:
            result = httpx.get(f"{url}/api/v1/query", params={"query": f'up{{namespace="{SERVING}"}} == 1'}, timeout=30).json()
        return result["data"]["result"]

    assert wait_for(f"Prometheus to scrape a target in {SERVING}", model_targets_up, timeout=180, interval=10)


@pytest.mark.parametrize(
    "series",
    [f"{catalog.QUEUE_PROXY_REQUEST_DURATION.name}_count", catalog.MLSERVER_INFER_SUCCESS.name],
    ids=["queue-proxy", "mlserver"],
)
def test_prometheus_counts_the_inference_from_both_sources(inference, forward, series):
    """The answered request is counted by the queue-proxy (on 9091) and by MLServer (on 8082), each
    series labelled with the model by its PodMonitor: the catalog's names, the ports reachable."""
    query = f'sum({series}{{namespace="{SERVING}", model="{MODEL}"}})'

    def counted() -> float:
        with forward(MONITORING, "svc/kube-prometheus-stack-prometheus", 9090) as url:
            result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=30).json()["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    assert wait_for(f"Prometheus to hold {query} >= 1", counted, timeout=180, interval=10) >= 1
