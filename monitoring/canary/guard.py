"""The canary guard: judges every running canary by its declared gates and aborts a failing one at once.

One process for all models (`python -m monitoring.canary.guard --config FILE`), run by one Deployment.
Every `--interval` seconds, for each canary in the config file (rendered from the stack config), it
evaluates the gates with `monitoring.canary.gates` against Prometheus and publishes the verdict as
`mlops_canary_verdict{namespace, model, model_version, verdict}` (1 for the current verdict).
On "rollback" it sends the canary's traffic to 0 on the InferenceService:
- Serverless: `spec.predictor.canaryTrafficPercent: 0` (KServe's documented rollback: all traffic to
  the previously rolled-out revision);
- RawDeployment: `spec.canary[i].trafficPercent: 0` on the entry serving the canary version.
The same JSON Patch records why in the annotation `mlops.platform/canary-aborted` (version, reasons,
time), guarded by a `test` of the object's resourceVersion so a concurrent change is never
overwritten; a Warning Event on the InferenceService says the same to `kubectl describe`.

It never promotes and never raises traffic. An aborted version stays aborted: the guard reads its
annotation instead of re-judging, reports "rollback" (so MlopsCanaryAborted keeps firing until the
stack config follows), and if something (a `pulumi up` of the unchanged config) gives the aborted
version traffic again, it aborts again at once with Event reason CanaryReopenedAfterAbort.

Pure stdlib plus prometheus_client: it runs in the runtime image and imports nothing from the IaC side.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from monitoring import catalog
from monitoring.canary.gates import Evaluation, Gates, Prometheus, PrometheusError, evaluate

ABORT_ANNOTATION = "mlops.platform/canary-aborted"
COMPONENT = "mlops-canary-guard"
ISVC_API = "serving.kserve.io/v1beta1"
VERDICTS = ("promote", "hold", "rollback")
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
Mode = Literal["Serverless", "RawDeployment"]

log = logging.getLogger(COMPONENT)


class GuardConfigError(ValueError):
    """The guard's config file is unusable; the message names the key and what is allowed."""


class KubernetesError(RuntimeError):
    """The API server refused or could not be reached; the message says which call and why."""


@dataclass(frozen=True)
class CanarySpec:
    namespace: str
    inference_service: str
    model: str
    canary_version: str
    mode: Mode
    gates: Gates
    # RawDeployment: the name of the spec.canary predictor serving the canary version.
    canary_predictor: str | None = None


def load_config(path: Path) -> tuple[str, list[CanarySpec]]:
    """(Prometheus URL, canaries) from the JSON file the platform renders into the guard's ConfigMap."""
    try:
        document = json.loads(path.read_text())
        canaries = []
        for index, entry in enumerate(document["canaries"]):
            mode = entry["mode"]
            if mode not in ("Serverless", "RawDeployment"):
                raise GuardConfigError(f"canaries[{index}].mode is {mode!r}; allowed: Serverless, RawDeployment")
            gates = entry["gates"]
            if mode == "RawDeployment" and not entry.get("canaryPredictor"):
                raise GuardConfigError(f"canaries[{index}].canaryPredictor is required in RawDeployment mode (the spec.canary predictor name)")
            canaries.append(
                CanarySpec(
                    namespace=entry["namespace"],
                    inference_service=entry["inferenceService"],
                    model=entry["model"],
                    canary_version=entry["canaryVersion"],
                    mode=mode,
                    gates=Gates(
                        max_error_rate=float(gates["maxErrorRate"]),
                        max_p99_latency_ms=float(gates["maxP99LatencyMs"]),
                        min_request_count=int(gates["minRequestCount"]),
                        window=str(gates["window"]),
                    ),
                    canary_predictor=entry.get("canaryPredictor"),
                )
            )
        return str(document["prometheusUrl"]), canaries
    except (OSError, json.JSONDecodeError) as error:
        raise GuardConfigError(f"cannot read guard config {path}: {error}") from error
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, GuardConfigError):
            raise
        raise GuardConfigError(f"guard config {path}: missing or invalid key {error}") from error


class Kubernetes:
    """The few API calls the guard makes, over HTTPS with the pod's service account (or plain HTTP
    to a test endpoint)."""

    def __init__(self, server: str, token: str | None = None, ca_file: Path | None = None, timeout: float = 15.0):
        self.server = server.rstrip("/")
        self.token = token
        self.context = ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else None
        self.timeout = timeout

    @classmethod
    def in_cluster(cls) -> "Kubernetes":
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        token = (SERVICE_ACCOUNT_DIR / "token").read_text().strip()
        return cls(f"https://{host}:{port}", token, SERVICE_ACCOUNT_DIR / "ca.crt")

    def _call(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.server}{path}", data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise KubernetesError(f"{method} {path}: HTTP {error.code}: {error.read().decode(errors='replace')[:300]}") from error
        except (urllib.error.URLError, OSError) as error:
            raise KubernetesError(f"{method} {path}: cannot reach {self.server}: {getattr(error, 'reason', error)}") from error

    @staticmethod
    def isvc_path(namespace: str, name: str) -> str:
        return f"/apis/{ISVC_API}/namespaces/{namespace}/inferenceservices/{name}"

    def get_isvc(self, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", self.isvc_path(namespace, name))

    def patch_isvc(self, namespace: str, name: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call("PATCH", self.isvc_path(namespace, name), operations, "application/json-patch+json")

    def create_event(self, namespace: str, event: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/namespaces/{namespace}/events", event)


def _pointer(*parts: str | int) -> str:
    """A JSON Pointer (RFC 6901): `~` and `/` inside a key are escaped."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def canary_traffic(isvc: dict[str, Any], spec: CanarySpec) -> tuple[str, int] | None:
    """(JSON Pointer, percent) of the traffic the canary version gets, or None if the object has no
    canary for that version (promoted, or rolled out differently)."""
    body = isvc.get("spec") or {}
    if spec.mode == "Serverless":
        percent = (body.get("predictor") or {}).get("canaryTrafficPercent")
        return (_pointer("spec", "predictor", "canaryTrafficPercent"), int(percent)) if percent is not None else None
    for index, entry in enumerate(body.get("canary") or []):
        if (entry.get("predictor") or {}).get("name") == spec.canary_predictor:
            return _pointer("spec", "canary", index, "trafficPercent"), int(entry.get("trafficPercent", 0))
    return None


def abort_record(isvc: dict[str, Any]) -> dict[str, Any] | None:
    text = ((isvc.get("metadata") or {}).get("annotations") or {}).get(ABORT_ANNOTATION)
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def abort_patch(isvc: dict[str, Any], traffic_pointer: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Traffic to 0 and the reason on the object, only if nobody changed it since it was read."""
    metadata = isvc.get("metadata") or {}
    operations: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion", "value": metadata.get("resourceVersion")}]
    annotation = json.dumps(record, sort_keys=True, separators=(",", ":"))
    if metadata.get("annotations"):
        operations.append({"op": "add", "path": _pointer("metadata", "annotations", ABORT_ANNOTATION), "value": annotation})
    else:
        operations.append({"op": "add", "path": "/metadata/annotations", "value": {ABORT_ANNOTATION: annotation}})
    operations.append({"op": "replace", "path": traffic_pointer, "value": 0})
    return operations


def event_for(isvc: dict[str, Any], reason: str, message: str, now: datetime) -> dict[str, Any]:
    metadata = isvc.get("metadata") or {}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{metadata.get('name')}.", "namespace": metadata.get("namespace")},
        "involvedObject": {
            "apiVersion": ISVC_API,
            "kind": "InferenceService",
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class Guard:
    def __init__(self, canaries: list[CanarySpec], prometheus: Prometheus, kubernetes: Kubernetes, registry: CollectorRegistry):
        self.canaries = canaries
        self.prometheus = prometheus
        self.kubernetes = kubernetes
        self.verdict = Gauge(
            catalog.CANARY_VERDICT,
            "1 for the canary guard's current verdict on a canary version (promote, hold, rollback), 0 for the others.",
            ["namespace", "model", "model_version", "verdict"],
            registry=registry,
        )

    def _publish(self, spec: CanarySpec, verdict: str) -> None:
        for candidate in VERDICTS:
            self.verdict.labels(spec.namespace, spec.model, spec.canary_version, candidate).set(1 if candidate == verdict else 0)

    def check(self, spec: CanarySpec, now: datetime) -> str:
        """Judge one canary and act on the verdict; returns the verdict published."""
        isvc = self.kubernetes.get_isvc(spec.namespace, spec.inference_service)
        traffic = canary_traffic(isvc, spec)
        record = abort_record(isvc)
        if record is not None and record.get("version") == spec.canary_version:
            if traffic is not None and traffic[1] > 0:
                message = (
                    f"canary version {spec.canary_version} was aborted at {record.get('at')} ({'; '.join(record.get('reasons', []))}) "
                    f"and got {traffic[1]}% traffic again; set it back to 0. Make the stack config follow the abort: mlops rollback {spec.model} --traffic"
                )
                self._abort(isvc, spec, traffic[0], record, "CanaryReopenedAfterAbort", message, now)
            self._publish(spec, "rollback")
            return "rollback"
        evaluation: Evaluation = evaluate(self.prometheus, spec.namespace, spec.model, spec.canary_version, spec.gates)
        self._publish(spec, evaluation.verdict)
        if evaluation.verdict == "rollback" and traffic is not None and traffic[1] > 0:
            record = {"version": spec.canary_version, "reasons": evaluation.reasons, "at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "by": COMPONENT}
            message = (
                f"canary version {spec.canary_version} of {spec.model} aborted: {'; '.join(evaluation.reasons)}. "
                f"Traffic set to 0; make the stack config follow: mlops rollback {spec.model} --traffic"
            )
            self._abort(isvc, spec, traffic[0], record, "CanaryAborted", message, now)
        return evaluation.verdict

    def _abort(self, isvc: dict[str, Any], spec: CanarySpec, pointer: str, record: dict[str, Any], reason: str, message: str, now: datetime) -> None:
        patched = self.kubernetes.patch_isvc(spec.namespace, spec.inference_service, abort_patch(isvc, pointer, record))
        log.warning("%s %s/%s: %s", reason, spec.namespace, spec.inference_service, message)
        self.kubernetes.create_event(spec.namespace, event_for(patched or isvc, reason, message, now))

    def run_once(self, now: datetime | None = None) -> dict[str, str]:
        """One pass over every canary; a failure on one canary is logged and does not stop the others."""
        verdicts = {}
        for spec in self.canaries:
            try:
                verdicts[f"{spec.namespace}/{spec.model}"] = self.check(spec, now or datetime.now(timezone.utc))
            except (KubernetesError, PrometheusError) as error:
                log.error("canary %s/%s version %s: %s", spec.namespace, spec.model, spec.canary_version, error)
        return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.canary.guard", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="JSON file: prometheusUrl and the canaries with their gates")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between passes (default 30)")
    parser.add_argument("--metrics-port", type=int, default=9090, help="port of /metrics (default 9090)")
    parser.add_argument("--api-server", help="API server URL (default: in-cluster service account)")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        prometheus_url, canaries = load_config(args.config)
    except GuardConfigError as error:
        print(f"canary guard: {error}", file=sys.stderr)
        return 2
    kubernetes = Kubernetes(args.api_server) if args.api_server else Kubernetes.in_cluster()
    registry = CollectorRegistry()
    guard = Guard(canaries, Prometheus(prometheus_url), kubernetes, registry)
    if args.once:
        guard.run_once()
        return 0
    start_http_server(args.metrics_port, registry=registry)
    while True:
        guard.run_once()
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
