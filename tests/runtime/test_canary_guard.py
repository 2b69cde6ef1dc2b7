"""The canary guard against a real Prometheus and a stand-in API server.

Prometheus scrapes live queue-proxy request series (tests/runtime/request_series.py) of a stable
and a canary version. The InferenceService the guard reads is the one the platform
renders (tests/fixtures/inferenceservices, kept equal to the render by
tests/components/test_canary_guard_component.py); a local HTTP endpoint serves it, applies the
guard's JSON Patch as the API server would, and records the Event. The patched object must still
validate against the KServe CRD schema (reference CRDs).
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from monitoring import catalog
from monitoring.canary.gates import Gates, Prometheus
from monitoring.canary.guard import ABORT_ANNOTATION, CanarySpec, Guard, Kubernetes, load_config, main
from tests.conftest import PROJECT_DIR, REFERENCE_DIR
from tests.runtime.request_series import Revision, revision_targets
from tests.runtime.servers import PrometheusServer, wait_for

pytestmark = pytest.mark.server

NAMESPACE = "mlops-serving"
FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "inferenceservices"
GATES = Gates(max_error_rate=0.01, max_p99_latency_ms=250, min_request_count=30, window="10m")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[PrometheusServer]:
    """Stable version 6 and canary version 7 of two models, all requests under 50 ms: fraud-detector's
    canary fails one request in five (HTTP 500), healthy-model's never."""
    revisions = [
        Revision(NAMESPACE, model, version, per_second, error_share)
        for model, canary_errors in (("fraud-detector", 0.2), ("healthy-model", 0.0))
        for version, per_second, error_share in (("6", 40.0, 0.0), ("7", 20.0, canary_errors))
    ]
    with revision_targets(revisions) as scrape_configs, PrometheusServer.start(
        tmp_path_factory.mktemp("prometheus"), scrape_configs=scrape_configs
    ) as server:
        samples = f'count_over_time({catalog.QUEUE_PROXY_REQUEST_DURATION.name}_count{{model_version="7", http_response_status_code="200"}}[1m])'

        def scraped_enough() -> bool:
            # Four scrapes: increase() over the canaries' first seconds passes minRequestCount.
            result = server.query(samples)
            return len(result) == 2 and all(float(r["value"][1]) >= 4 for r in result)

        wait_for("four scrapes of the canaries' requests", scraped_enough, 30)
        yield server


class ApiServer:
    """Serves one InferenceService, applies JSON Patches to it (rejecting a failed `test` with 422
    as the API server does), bumps resourceVersion, and records every call."""

    def __init__(self, isvc: dict[str, Any]):
        self.isvc = copy.deepcopy(isvc)
        self.isvc["metadata"].update({"resourceVersion": "1000", "uid": "0d6f7c52-4b1e-4d8a-9a51-3f0e8a6c2b11"})
        self.patches: list[list[dict[str, Any]]] = []
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def path(self) -> str:
        meta = self.isvc["metadata"]
        return f"/apis/serving.kserve.io/v1beta1/namespaces/{meta['namespace']}/inferenceservices/{meta['name']}"


@pytest.fixture
def api_server(request) -> Iterator[tuple[str, ApiServer]]:
    state = ApiServer(json.loads((FIXTURES / f"fraud-detector.{request.param}.json").read_text()))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with state.lock:
                self._answer(200, state.isvc) if self.path == state.path() else self._answer(404, {"reason": "NotFound"})

        def do_PATCH(self) -> None:  # noqa: N802
            assert self.headers["Content-Type"] == "application/json-patch+json"
            operations = self._body()
            with state.lock:
                state.patches.append(operations)
                try:
                    patched = jsonpatch.apply_patch(state.isvc, operations)
                except jsonpatch.JsonPatchTestFailed as error:
                    self._answer(422, {"reason": "Invalid", "message": str(error)})
                    return
                patched["metadata"]["resourceVersion"] = str(int(state.isvc["metadata"]["resourceVersion"]) + 1)
                state.isvc = patched
                self._answer(200, patched)

        def do_POST(self) -> None:  # noqa: N802
            with state.lock:
                state.events.append(self._body())
            self._answer(201, state.events[-1])

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


@functools.lru_cache(maxsize=1)
def isvc_schema() -> dict[str, Any]:
    # The CRD is 2 MB of YAML: libyaml's loader reads it in about a second, the pure-Python one in tens.
    crd = yaml.load((REFERENCE_DIR / "crds" / "serving.kserve.io_inferenceservices.yaml").read_text(), Loader=yaml.CSafeLoader)
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")["schema"]["openAPIV3Schema"]


def crd_errors(isvc: dict[str, Any]) -> list[str]:
    schema = isvc_schema()
    return [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(isvc)]


def spec_for(mode: str, model: str = "fraud-detector") -> CanarySpec:
    return CanarySpec(NAMESPACE, "fraud-detector", model, "7", mode, GATES, "v7" if mode == "RawDeployment" else None)  # type: ignore[arg-type]


def verdict_samples(registry: CollectorRegistry) -> dict[str, float]:
    lines = generate_latest(registry).decode().splitlines()
    return {
        line.split('verdict="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith(catalog.CANARY_VERDICT + "{")
    }


@pytest.mark.parametrize("api_server", ["Serverless", "RawDeployment"], indirect=True)
def test_a_failing_canary_is_aborted_at_once_and_says_why(api_server, prometheus):
    url, state = api_server
    mode = "RawDeployment" if "canary" in state.isvc["spec"] else "Serverless"
    registry = CollectorRegistry()
    guard = Guard([spec_for(mode)], Prometheus(prometheus.url), Kubernetes(url), registry)
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    assert guard.run_once(now) == {f"{NAMESPACE}/fraud-detector": "rollback"}

    (operations,) = state.patches
    assert operations[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "1000"}
    isvc = state.isvc
    if mode == "Serverless":
        assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    else:
        assert [(c["predictor"]["name"], c["trafficPercent"]) for c in isvc["spec"]["canary"]] == [("v7", 0)]
    record = json.loads(isvc["metadata"]["annotations"][ABORT_ANNOTATION])
    assert record["version"] == "7" and record["at"] == "2026-12-01T12:00:00Z"
    assert "5xx ratio" in record["reasons"][0] and "above maxErrorRate 0.01" in record["reasons"][0]
    assert crd_errors(isvc) == []
    (event,) = state.events
    assert event["reason"] == "CanaryAborted" and event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "InferenceService" and event["involvedObject"]["uid"] == isvc["metadata"]["uid"]
    assert "mlops rollback fraud-detector --traffic" in event["message"]
    assert verdict_samples(registry) == {"promote": 0.0, "hold": 0.0, "rollback": 1.0}
    assert {metric.name for metric in registry.collect()} == catalog.CANARY_GUARD_SERIES

    # Aborted stays aborted: no second patch while traffic stays 0 ...
    guard.run_once(now)
    assert len(state.patches) == 1
    # ... and traffic given back to the aborted version (a `pulumi up` of the unchanged config) is taken away again.
    with state.lock:
        if mode == "Serverless":
            state.isvc["spec"]["predictor"]["canaryTrafficPercent"] = 10
        else:
            state.isvc["spec"]["canary"][0]["trafficPercent"] = 10
    assert guard.run_once(now) == {f"{NAMESPACE}/fraud-detector": "rollback"}
    assert len(state.patches) == 2 and state.events[-1]["reason"] == "CanaryReopenedAfterAbort"
    traffic = state.isvc["spec"]["predictor"].get("canaryTrafficPercent") if mode == "Serverless" else state.isvc["spec"]["canary"][0]["trafficPercent"]
    assert traffic == 0


@pytest.mark.parametrize("api_server", ["Serverless"], indirect=True)
def test_a_healthy_canary_is_left_alone_and_never_promoted(api_server, prometheus):
    url, state = api_server
    registry = CollectorRegistry()
    guard = Guard([spec_for("Serverless", model="healthy-model")], Prometheus(prometheus.url), Kubernetes(url), registry)
    assert guard.run_once() == {f"{NAMESPACE}/healthy-model": "promote"}
    assert state.patches == [] and state.events == []
    assert state.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert verdict_samples(registry)["promote"] == 1.0


@pytest.mark.parametrize("api_server", ["Serverless"], indirect=True)
def test_a_concurrent_change_is_not_overwritten(api_server, prometheus):
    """The patch tests resourceVersion: if the object changed after the guard read it, the API server
    refuses the patch and the guard logs the refusal and tries again on its next pass."""
    url, state = api_server
    kubernetes = Kubernetes(url)
    read = kubernetes.get_isvc(NAMESPACE, "fraud-detector")
    with state.lock:
        state.isvc["metadata"]["resourceVersion"] = "1001"
    guard = Guard([spec_for("Serverless")], Prometheus(prometheus.url), kubernetes, CollectorRegistry())
    guard.kubernetes.get_isvc = lambda namespace, name: read  # type: ignore[method-assign]
    guard.run_once()
    assert state.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10 and state.events == []


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    config = tmp_path / "guard.json"
    config.write_text(json.dumps({"prometheusUrl": "http://p", "canaries": [{"namespace": "n", "inferenceService": "m", "model": "m",
                                  "canaryVersion": "7", "mode": "Knative", "gates": {}}]}))
    assert main(["--config", str(config), "--api-server", "http://127.0.0.1:9", "--once"]) == 2
    assert capsys.readouterr().err.strip() == "canary guard: canaries[0].mode is 'Knative'; allowed: Serverless, RawDeployment"
    config.write_text(json.dumps({"prometheusUrl": "http://p", "canaries": [{"namespace": "n"}]}))
    assert main(["--config", str(config), "--api-server", "http://127.0.0.1:9", "--once"]) == 2
    assert "missing or invalid key 'mode'" in capsys.readouterr().err


def test_config_file_round_trip(tmp_path):
    config = tmp_path / "guard.json"
    config.write_text(json.dumps({"prometheusUrl": "http://prometheus:9090", "canaries": [
        {"namespace": NAMESPACE, "inferenceService": "fraud-detector", "model": "fraud-detector", "canaryVersion": "7",
         "mode": "RawDeployment", "canaryPredictor": "v7",
         "gates": {"maxErrorRate": 0.01, "maxP99LatencyMs": 250, "minRequestCount": 30, "window": "10m"}}]}))
    assert load_config(config) == ("http://prometheus:9090", [spec_for("RawDeployment")])
