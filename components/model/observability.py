"""What watches one declared model: scrape config, alert rules, dashboard and drift job (pure builders).

The PromQL (alert rules, dashboard) is built by `monitoring.model_watch` from the declaration's values,
so the runtime tests evaluate the very expressions rendered here against real model servers. The
scrape config reads the two sources monitoring/catalog.py names: the Knative queue-proxy's request
histogram (Serverless) and the model server's own metrics.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pulumi

from components import workloads
from components.declarations import ModelDeployment
from components.model.serving import MODEL_LABEL, VERSION_LABEL, DeploymentMode, job_template_name
from components.model.training import JOB_TEMPLATE_DIR, JOB_TEMPLATE_PATH
from components.pod_requests import DRIFT_JOB_RESOURCES
from monitoring import catalog, model_watch
from monitoring.canary.gates import Gates

# The queue-proxy's named port for request metrics (knative/serving pkg/apis/serving/v1/revision_helpers.go
# UserQueueMetricsPortName, 9091, @ knative-v1.21.3); it answers once config-observability sets
# request-metrics-protocol (components/platform/knative.py).
QUEUE_PROXY_METRICS_PORT = "http-usermetric"
# The predictor's container port KServe declares in RawDeployment mode.
PREDICTOR_PORT = 8080
# The model server each format runs on (the ServingRuntimes in components/platform/kserve.py): MLServer
# for MLflow models, the KServe Python servers (sklearnserver, xgbserver) for the others.
MODEL_SERVER_OF_FORMAT: dict[str, model_watch.ModelServer] = {"mlflow": "mlserver", "sklearn": "kserve", "xgboost": "kserve"}
MODEL_SERVER_METRICS_PORT = {"mlserver": catalog.MLSERVER_METRICS_PORT, "kserve": catalog.KSERVE_METRICS_PORT}
DRIFT_JOB_COMPONENT = "drift-job"
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
dashboard_uid = model_watch.dashboard_uid

def _pod_label(name: str) -> str:
    """The Prometheus meta label of a pod label (non-alphanumerics become underscores)."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in name)


def _keep(families: tuple[catalog.MetricFamily, ...]) -> list[dict[str, Any]]:
    """Keep only the catalog's series of these families: the exporters also serve runtime internals."""
    names = sorted(name for family in families for name in family.series)
    return [{"action": "keep", "sourceLabels": ["__name__"], "regex": "|".join(names)}]


def pod_monitor_spec(model: ModelDeployment, mode: DeploymentMode, namespace: str) -> dict[str, Any]:
    """Scrape the model's pods, labelling every series with namespace, model, model_version, revision:
    in Serverless mode the queue-proxy's request histogram, in both modes the model server's own
    metrics. A model server's metrics port need not be a declared container port (MLServer's 8082 is
    not, and Knative lets the user container declare one port): that endpoint discovers the pod through
    a declared port and rewrites the address to the pod IP and the server's metrics port."""
    revision_source = "serving.knative.dev/revision" if mode == "Serverless" else "app"
    labels = [
        {"action": "replace", "sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace"},
        {"action": "replace", "sourceLabels": [_pod_label(MODEL_LABEL)], "targetLabel": "model"},
        {"action": "replace", "sourceLabels": [_pod_label(VERSION_LABEL)], "targetLabel": "model_version"},
        {"action": "replace", "sourceLabels": [_pod_label(revision_source)], "targetLabel": "revision"},
    ]
    server = MODEL_SERVER_OF_FORMAT[model.format]
    discovery: dict[str, Any] = {"port": QUEUE_PROXY_METRICS_PORT} if mode == "Serverless" else {"portNumber": PREDICTOR_PORT}
    model_server = {
        **discovery,
        "path": "/metrics",
        "interval": "15s",
        "relabelings": [
            {
                "action": "replace",
                "sourceLabels": ["__meta_kubernetes_pod_ip"],
                "regex": "(.+)",
                "replacement": f"$1:{MODEL_SERVER_METRICS_PORT[server]}",
                "targetLabel": "__address__",
            },
            *labels,
        ],
        "metricRelabelings": _keep(catalog.MODEL_SERVER_FAMILIES[server]),
    }
    endpoints = [model_server]
    if mode == "Serverless":
        queue_proxy = {
            "port": QUEUE_PROXY_METRICS_PORT,
            "path": "/metrics",
            "interval": "15s",
            "relabelings": labels,
            "metricRelabelings": _keep((catalog.QUEUE_PROXY_REQUEST_DURATION,)),
        }
        endpoints.insert(0, queue_proxy)
    return {
        "selector": {"matchLabels": {MODEL_LABEL: model.name}},
        "namespaceSelector": {"matchNames": [namespace]},
        "podMetricsEndpoints": endpoints,
    }


def watched_model(model: ModelDeployment, namespace: str) -> model_watch.WatchedModel:
    """The declaration in the plain values monitoring.model_watch builds the queries from."""
    monitoring, retraining = model.monitoring, model.retraining
    assert monitoring is not None and retraining is not None
    canary = None
    if model.canary is not None:
        gates = model.canary.gates
        canary = model_watch.WatchedCanary(
            version=model.model.deployed_version,
            traffic_percent=model.canary.traffic_percent,
            gates=Gates(gates.max_error_rate, gates.max_p99_latency_ms, gates.min_request_count, gates.window),
        )
    return model_watch.WatchedModel(
        namespace=namespace,
        model=model.name,
        server=MODEL_SERVER_OF_FORMAT[model.format],
        availability=model.slo.availability,
        p99_latency_ms=model.slo.p99_latency_ms,
        drift_share_threshold=monitoring.drift_share_threshold,
        retraining_policy=retraining.policy,
        retraining_trigger=retraining.webhook if retraining.policy != "scheduled" else f"schedule {retraining.schedule}",
        canary=canary,
        gpus=model.resources.gpus,
    )


def prometheus_rule_spec(model: ModelDeployment, namespace: str) -> dict[str, Any]:
    return {"groups": [model_watch.rule_group(watched_model(model, namespace))]}


def dashboard(model: ModelDeployment, namespace: str) -> dict[str, Any]:
    return model_watch.dashboard(watched_model(model, namespace))


def dashboard_data(model: ModelDeployment, namespace: str) -> dict[str, str]:
    return {f"model-{model.name}.json": indented_json(dashboard(model, namespace))}


_JSON_STRING = json.encoder.encode_basestring_ascii
_JSON_CONSTANTS = {None: "null", True: "true", False: "false"}


def indented_json(value: Any) -> str:
    """`json.dumps(value, indent=2, sort_keys=True)`, character for character, twice as fast.

    With an indent the standard library leaves its C encoder for a chain of Python generators:
    0.8 ms per model dashboard. Strings still go through the C escaper. Keys must be strings (a
    dashboard has no others); anything but JSON's own types is refused as json.dumps refuses it.
    """
    chunks: list[str] = []
    write = chunks.append

    def encode(node: Any, newline: str) -> None:
        kind = type(node)
        if kind is str:
            write(_JSON_STRING(node))
        elif kind is dict:
            if not node:
                write("{}")
                return
            inner, separator = newline + "  ", "{"
            for key in sorted(node):
                if type(key) is not str:
                    raise TypeError(f"indented_json takes string keys only, not {key!r}")
                write(separator + inner)
                write(_JSON_STRING(key) + ": ")
                encode(node[key], inner)
                separator = ","
            write(newline + "}")
        elif kind is list or kind is tuple:
            if not node:
                write("[]")
                return
            inner, separator = newline + "  ", "["
            for item in node:
                write(separator + inner)
                encode(item, inner)
                separator = ","
            write(newline + "]")
        elif node is None or node is True or node is False:
            write(_JSON_CONSTANTS[node])
        elif isinstance(node, int):
            write(int.__repr__(node))
        elif isinstance(node, float):
            write(_float(node))
        elif isinstance(node, str):
            write(_JSON_STRING(node))
        else:
            raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")

    encode(value, "\n")
    return "".join(chunks)


def _float(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def drift_job_labels(model: ModelDeployment) -> dict[str, str]:
    return {**workloads.labels(f"{model.name}-drift", DRIFT_JOB_COMPONENT), MODEL_LABEL: model.name}


# Under the payload bucket, beside the payloads: the drift job's identity reads payloads and may
# create report objects, nothing else.
DRIFT_REPORT_PREFIX = "drift-reports"


def drift_job_args(
    model: ModelDeployment, payload_root: pulumi.Input[str], report_root: pulumi.Input[str], pushgateway_url: pulumi.Input[str]
) -> list[pulumi.Input[str]]:
    monitoring, retraining = model.monitoring, model.retraining
    assert monitoring is not None and retraining is not None
    args: list[pulumi.Input[str]] = [
        "--model", model.name,
        "--model-version", model.model.deployed_version,
        "--reference", monitoring.reference_data_uri,
        "--payload-root", payload_root,
        "--report-root", report_root,
        "--window-hours", str(monitoring.drift_window_hours),
        "--pushgateway", pushgateway_url,
        "--drift-share-threshold", f"{monitoring.drift_share_threshold:g}",
    ]
    if monitoring.feature_drift_threshold is not None:
        args += ["--feature-threshold", f"{monitoring.feature_drift_threshold:g}"]
    if monitoring.labels_uri is not None and monitoring.task is not None:
        args += ["--labels", monitoring.labels_uri, "--task", monitoring.task]
    # A scheduled retraining is not triggered by drift: the job only reports.
    policy = "never" if retraining.policy == "scheduled" else retraining.policy
    if retraining.webhook is not None and policy != "never":
        args += ["--retrain-webhook", retraining.webhook]
        if retraining.webhook_event_type is not None:
            args += ["--retrain-webhook-event-type", retraining.webhook_event_type]
    if creates_training_jobs(model):
        args += ["--retrain-job-template", JOB_TEMPLATE_PATH]
    return args + ["--retrain-policy", policy]


def creates_training_jobs(model: ModelDeployment) -> bool:
    """Drift-triggered retraining by a platform Job: the drift job mounts its template and calls the API."""
    retraining = model.retraining
    return retraining is not None and retraining.policy != "scheduled" and retraining.job is not None


def drift_trigger_env(model: ModelDeployment) -> list[dict[str, Any]]:
    """The webhook's signing key and bearer token, from their Secrets."""
    retraining = model.retraining
    if retraining is None:
        return []
    secrets = (("DRIFT_RETRAIN_WEBHOOK_SECRET", retraining.webhook_secret), ("DRIFT_RETRAIN_WEBHOOK_TOKEN", retraining.webhook_token))
    return [workloads.secret_env(variable, ref.secret, ref.key) for variable, ref in secrets if ref is not None]


def drift_cronjob_spec(
    model: ModelDeployment,
    *,
    image: pulumi.Input[str],
    account: pulumi.Input[str],
    payload_root: pulumi.Input[str],
    report_root: pulumi.Input[str],
    pushgateway_url: pulumi.Input[str],
    env: list[dict[str, Any]],
) -> dict[str, Any]:
    assert model.monitoring is not None
    labels = drift_job_labels(model)
    template_mounts, template_volumes = [], []
    if creates_training_jobs(model):
        template_mounts = [{"name": "training-job", "mountPath": JOB_TEMPLATE_DIR, "readOnly": True}]
        template_volumes = [{"name": "training-job", "configMap": {"name": job_template_name(model)}}]
    return {
        "schedule": model.monitoring.drift_schedule,
        "timeZone": "Etc/UTC",
        # Two runs over the same window would push competing results.
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "metadata": {"labels": labels},
            "spec": {
                "backoffLimit": 1,
                "activeDeadlineSeconds": 3600,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": account,
                        # The API token only where the drift job creates training Jobs.
                        "automountServiceAccountToken": creates_training_jobs(model),
                        "restartPolicy": "Never",
                        "securityContext": workloads.RESTRICTED_POD_SECURITY,
                        "containers": [
                            {
                                "name": "drift",
                                "image": image,
                                "command": ["python", "-m", "monitoring.drift_job"],
                                "args": drift_job_args(model, payload_root, report_root, pushgateway_url),
                                "env": [*env, *drift_trigger_env(model)],
                                "resources": DRIFT_JOB_RESOURCES,
                                "securityContext": workloads.restricted_container_security(run_as_user=workloads.UNPRIVILEGED_USER),
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *template_mounts],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}, *template_volumes],
                    },
                },
            },
        },
    }
