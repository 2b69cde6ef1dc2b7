"""What watches one declared model: scrape config, alert rules, dashboard and drift job (pure builders).

Platform-wide rules (generic error rate, no traffic compared with yesterday, every drift signal,
drift job health) live in `monitoring/rules/`; the rules here are the ones only the model's own
declaration can give: its SLO (availability burn rate, p99 latency), its canary gates, and its
drift share threshold with the retraining strategy the alert leads to.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi

from components import workloads
from monitoring import catalog
from components.model.serving import MODEL_LABEL, VERSION_LABEL, DeploymentMode
from components.declarations import ModelDeployment

# Knative's queue-proxy serves the request metrics (revision_request_*) on this container port.
QUEUE_PROXY_METRICS_PORT = "http-usermetric"
# Without a queue-proxy (RawDeployment), the KServe model server serves /metrics on its own port.
MODEL_SERVER_METRICS_PORT = 8080
DRIFT_JOB_COMPONENT = "drift-job"
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
PROMETHEUS_DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
# Fires while the stack config says the model's canary is promoted: the source of Alertmanager's
# inhibition of canary-gate alerts left over from the rollout (components/platform/alertmanager.py).
PROMOTED_ALERT = "MlopsModelPromoted"
# Multiwindow burn-rate alerts (Google SRE workbook): (long, short, factor, for, severity).
BURN_RATE_WINDOWS = (("1h", "5m", 14.4, "2m", "critical"), ("6h", "30m", 6.0, "15m", "warning"))


def _pod_label(name: str) -> str:
    """The Prometheus meta label of a pod label (non-alphanumerics become underscores)."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in name)


def pod_monitor_spec(model: ModelDeployment, mode: DeploymentMode, namespace: str) -> dict[str, Any]:
    """Scrape the model's pods, labelling every series with namespace, model, model_version, revision."""
    revision_source = "serving.knative.dev/revision" if mode == "Serverless" else "app"
    port: dict[str, Any] = {"port": QUEUE_PROXY_METRICS_PORT} if mode == "Serverless" else {"portNumber": MODEL_SERVER_METRICS_PORT}
    endpoint: dict[str, Any] = {
        **port,
        "path": "/metrics",
        "interval": "15s",
        "relabelings": [
            {"action": "replace", "sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace"},
            {"action": "replace", "sourceLabels": [_pod_label(MODEL_LABEL)], "targetLabel": "model"},
            {"action": "replace", "sourceLabels": [_pod_label(VERSION_LABEL)], "targetLabel": "model_version"},
            {"action": "replace", "sourceLabels": [_pod_label(revision_source)], "targetLabel": "revision"},
        ],
    }
    if mode == "Serverless":
        # Only the request series: the queue-proxy also exports Go runtime and autoscaler internals.
        endpoint["metricRelabelings"] = [
            {"action": "keep", "sourceLabels": ["__name__"], "regex": "revision_request_(count|latencies_(bucket|sum|count))"}
        ]
    return {
        "selector": {"matchLabels": {MODEL_LABEL: model.name}},
        "namespaceSelector": {"matchNames": [namespace]},
        "podMetricsEndpoints": [endpoint],
    }


def _selector(model: ModelDeployment, namespace: str, version: str | None = None) -> str:
    labels = f'namespace="{namespace}", model="{model.name}"'
    return labels + (f', model_version="{version}"' if version is not None else "")


def error_ratio(selector: str, window: str) -> str:
    return (
        f'sum(rate(revision_request_count{{{selector}, response_code_class="5xx"}}[{window}]))'
        f" / sum(rate(revision_request_count{{{selector}}}[{window}]))"
    )


def p99_latency(selector: str, window: str) -> str:
    return f"histogram_quantile(0.99, sum by (le) (rate(revision_request_latencies_bucket{{{selector}}}[{window}])))"


def prometheus_rule_spec(model: ModelDeployment, namespace: str) -> dict[str, Any]:
    everything = _selector(model, namespace)
    labels = {"model": model.name, "namespace": namespace}
    budget = round(1 - model.slo.availability, 6)
    rules: list[dict[str, Any]] = []
    for long, short, factor, hold, severity in BURN_RATE_WINDOWS:
        threshold = round(factor * budget, 6)
        rules.append(
            {
                "alert": "MlopsModelSloBurnRate" + ("Fast" if severity == "critical" else "Slow"),
                "expr": f"({error_ratio(everything, long)}) > {threshold}\nand\n({error_ratio(everything, short)}) > {threshold}",
                "for": hold,
                "labels": {**labels, "severity": severity},
                "annotations": {
                    "summary": f"{model.name} burns its {model.slo.availability:.3%} availability budget {factor}x too fast",
                    "description": f"5xx ratio over {long} and {short} is above {threshold} ({factor} x the error budget {budget}).",
                    "runbook": f"mlops canary analyze {model.name} (if a canary is running), then mlops rollback {model.name}.",
                },
            }
        )
    rules.append(
        {
            "alert": "MlopsModelLatencySlo",
            "expr": f"{p99_latency(everything, '10m')} > {model.slo.p99_latency_ms:g}",
            "for": "10m",
            "labels": {**labels, "severity": "warning"},
            "annotations": {
                "summary": f"{model.name} p99 latency above its SLO of {model.slo.p99_latency_ms:g} ms",
                "description": "p99 over 10m is {{ $value | humanize }} ms.",
            },
        }
    )
    # Gate alerts while a new version shares the traffic; a promoted model (100 %) has no stable side.
    if model.canary is not None and model.canary.traffic_percent < 100:
        rules += _canary_rules(model, namespace, labels)
    elif model.canary is not None:
        rules.append(_promoted_rule(model, labels))
    rules.append(_drift_rule(model, labels))
    if model.resources.gpus > 0:
        rules += _gpu_rules(model, namespace, labels)
    return {"groups": [{"name": f"mlops-model-{model.name}", "rules": rules}]}


def _canary_rules(model: ModelDeployment, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    assert model.canary is not None
    gates, window = model.canary.gates, model.canary.gates.window
    canary = _selector(model, namespace, model.model.deployed_version)
    canary_labels = {**labels, "model_version": model.model.deployed_version, "severity": "critical"}
    rollback = f"Roll back: set mlops:models[{model.name}].canary.trafficPercent to 0 (or mlops rollback {model.name}), pulumi up."
    rules: list[dict[str, Any]] = [
        {
            "alert": "MlopsModelCanaryErrorGate",
            "expr": f"({error_ratio(canary, window)}) > {gates.max_error_rate:g}",
            "labels": canary_labels,
            "annotations": {"summary": f"{model.name} canary 5xx ratio above its gate {gates.max_error_rate:g}", "runbook": rollback},
        },
        {
            "alert": "MlopsModelCanaryLatencyGate",
            "expr": f"{p99_latency(canary, window)} > {gates.max_p99_latency_ms:g}",
            "labels": canary_labels,
            "annotations": {"summary": f"{model.name} canary p99 above its gate {gates.max_p99_latency_ms:g} ms", "runbook": rollback},
        },
    ]
    if model.canary.traffic_percent > 0:
        # A declared split that sends the canary nothing means the mode ignored it (kserve #5335).
        rules.append(
            {
                "alert": "MlopsModelCanaryNoTraffic",
                "expr": f"sum(rate(revision_request_count{{{_selector(model, namespace)}}}[{window}])) > 0\n"
                f"unless\nsum(rate(revision_request_count{{{canary}}}[{window}])) > 0",
                "for": window,
                "labels": {**canary_labels, "severity": "warning"},
                "annotations": {
                    "summary": f"{model.name} serves traffic but its canary ({model.canary.traffic_percent}%) gets none",
                    "description": "The traffic split is not applied; check the InferenceService status and deployment mode.",
                },
            }
        )
    return rules


# A GPU model's GPUs, averaged over the model's pods: idle for an hour means paid-for GPUs doing
# nothing; busy above 90 % (or memory nearly full) for 15 minutes means requests queue for the GPU.
GPU_IDLE_PERCENT, GPU_IDLE_FOR = 10, "1h"
GPU_SATURATED_PERCENT, GPU_MEMORY_FULL_SHARE, GPU_SATURATED_FOR = 90, 0.95, "15m"


def _gpu_selector(model: ModelDeployment, namespace: str) -> str:
    return f'namespace="{namespace}", model="{model.name}"'


def _gpu_rules(model: ModelDeployment, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    gpus = _gpu_selector(model, namespace)
    utilization = f"avg({catalog.GPU_UTILIZATION.name}{{{gpus}}})"
    used, free = catalog.GPU_MEMORY_USED.name, catalog.GPU_MEMORY_FREE.name
    memory_share = f"max({used}{{{gpus}}} / ({used}{{{gpus}}} + {free}{{{gpus}}}))"
    return [
        {
            "alert": "MlopsModelGpuIdle",
            "expr": f"{utilization} < {GPU_IDLE_PERCENT}",
            "for": GPU_IDLE_FOR,
            "labels": {**labels, "severity": "warning"},
            "annotations": {
                "summary": f"{model.name}'s GPUs averaged under {GPU_IDLE_PERCENT}% utilisation for {GPU_IDLE_FOR}",
                "description": "Average GPU utilisation is {{ $value | humanize }}%.",
                "runbook": f"Lower mlops:models[{model.name}].autoscaling.minReplicas or serve it on CPU (resources.gpus 0) if the load stays this low.",
            },
        },
        {
            "alert": "MlopsModelGpuSaturated",
            "expr": f"{utilization} > {GPU_SATURATED_PERCENT}\nor\n{memory_share} > {GPU_MEMORY_FULL_SHARE}",
            "for": GPU_SATURATED_FOR,
            "labels": {**labels, "severity": "warning"},
            "annotations": {
                "summary": f"{model.name}'s GPUs are saturated (utilisation above {GPU_SATURATED_PERCENT}% or memory above {GPU_MEMORY_FULL_SHARE:.0%})",
                "description": "Value {{ $value | humanize }} (percent utilisation, or share of GPU memory used).",
                "runbook": f"Raise mlops:models[{model.name}].autoscaling.maxReplicas (within the GPU pool's maxSize) or lower the autoscaling target.",
            },
        },
    ]


def _promoted_rule(model: ModelDeployment, labels: dict[str, str]) -> dict[str, Any]:
    """Fires as long as the config says the model is promoted: the source of Alertmanager's inhibition
    of canary-gate alerts still firing from the rollout (routed to no one itself)."""
    return {
        "alert": PROMOTED_ALERT,
        "expr": "vector(1)",
        "labels": {**labels, "model_version": model.model.deployed_version, "severity": "info"},
        "annotations": {"summary": f"{model.name} {model.model.deployed_version} is promoted: canary-gate alerts are inhibited"},
    }


def _drift_rule(model: ModelDeployment, labels: dict[str, str]) -> dict[str, Any]:
    monitoring, retraining = model.monitoring, model.retraining
    assert monitoring is not None and retraining is not None
    trigger = retraining.webhook if retraining.policy != "scheduled" else f"schedule {retraining.schedule}"
    return {
        "alert": "MlopsModelDriftAboveThreshold",
        "expr": f'max(mlops_drift_dataset_drift_share{{model="{model.name}"}}) >= {monitoring.drift_share_threshold:g}',
        "labels": {**labels, "severity": "warning", "retraining_policy": retraining.policy},
        "annotations": {
            "summary": f"{model.name}: share of drifted features at or above {monitoring.drift_share_threshold:g}",
            "description": f"Retraining policy {retraining.policy}: {trigger}.",
        },
    }


def dashboard_uid(model: str) -> str:
    """Grafana uids are at most 40 characters; long model names keep a stable hashed tail."""
    uid = f"mlops-model-{model}"
    return uid if len(uid) <= 40 else uid[:31] + "-" + hashlib.sha256(model.encode()).hexdigest()[:8]


def _panel(index: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": PROMETHEUS_DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend, "datasource": PROMETHEUS_DATASOURCE}
            for n, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard(model: ModelDeployment, namespace: str) -> dict[str, Any]:
    """The model's Grafana dashboard: traffic, errors and latency per version (canary vs stable), drift."""
    selector = _selector(model, namespace)
    by_version = "sum by (model_version)"
    panels = [
        ("Requests per second by version", "reqps", [(f"{by_version} (rate(revision_request_count{{{selector}}}[5m]))", "{{model_version}}")]),
        (
            "Traffic share by version",
            "percentunit",
            [
                (
                    f"{by_version} (rate(revision_request_count{{{selector}}}[5m])) / ignoring(model_version) group_left "
                    f"sum(rate(revision_request_count{{{selector}}}[5m]))",
                    "{{model_version}}",
                )
            ],
        ),
        (
            "5xx ratio by version",
            "percentunit",
            [
                (
                    f'{by_version} (rate(revision_request_count{{{selector}, response_code_class="5xx"}}[5m])) / '
                    f"{by_version} (rate(revision_request_count{{{selector}}}[5m]))",
                    "{{model_version}}",
                )
            ],
        ),
        (
            "Latency by version",
            "ms",
            [
                (f"histogram_quantile({q}, sum by (le, model_version) (rate(revision_request_latencies_bucket{{{selector}}}[5m])))", f"p{int(q * 100)} {{{{model_version}}}}")
                for q in (0.5, 0.99)
            ],
        ),
        ("Dataset drift share", "percentunit", [(f'mlops_drift_dataset_drift_share{{model="{model.name}"}}', "{{version}}")]),
        ("Feature drift scores", "none", [(f'mlops_drift_feature_score{{model="{model.name}"}}', "{{feature}} ({{method}})")]),
        ("Payload records written", "short", [(f'sum by (version) (rate(mlops_collector_records_written_total{{model="{model.name}"}}[5m]))', "{{version}}")]),
        ("Drift job status", "none", [(f'mlops_drift_job_status{{model="{model.name}"}} == 1', "{{version}} {{status}}")]),
    ]
    return {
        "uid": dashboard_uid(model.name),
        "title": f"Model {model.name}",
        "tags": ["mlops", "model"],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "panels": [_panel(i, title, unit, targets) for i, (title, unit, targets) in enumerate(panels)]
        + (_gpu_row(model, namespace, first_id=len(panels) + 1, y=8 * ((len(panels) + 1) // 2)) if model.resources.gpus > 0 else []),
    }


def _gpu_row(model: ModelDeployment, namespace: str, first_id: int, y: int) -> list[dict[str, Any]]:
    """A row of three panels, per pod and GPU: utilisation, memory used, power draw (DCGM exporter)."""
    gpus = _gpu_selector(model, namespace)
    legend = "{{pod}} GPU {{gpu}}"
    panels: list[dict[str, Any]] = [
        {"id": first_id, "type": "row", "title": "GPU", "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []}
    ]
    for offset, (title, family, unit) in enumerate(
        (
            ("GPU utilisation", catalog.GPU_UTILIZATION, "percent"),
            ("GPU memory used", catalog.GPU_MEMORY_USED, "decmbytes"),
            ("GPU power draw", catalog.GPU_POWER_USAGE, "watt"),
        )
    ):
        panel = _panel(0, title, unit, [(f"max by (pod, gpu) ({family.name}{{{gpus}}})", legend)])
        panel["id"] = first_id + 1 + offset
        panel["gridPos"] = {"h": 8, "w": 8, "x": 8 * offset, "y": y + 1}
        panels.append(panel)
    return panels


def dashboard_data(model: ModelDeployment, namespace: str) -> dict[str, str]:
    return {f"model-{model.name}.json": json.dumps(dashboard(model, namespace), indent=2, sort_keys=True)}


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
    return args + ["--retrain-policy", policy]


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
                        "automountServiceAccountToken": False,
                        "restartPolicy": "Never",
                        "securityContext": workloads.RESTRICTED_POD_SECURITY,
                        "containers": [
                            {
                                "name": "drift",
                                "image": image,
                                "command": ["python", "-m", "monitoring.drift_job"],
                                "args": drift_job_args(model, payload_root, report_root, pushgateway_url),
                                "env": env,
                                "resources": workloads.resources("250m", "1Gi", cpu_limit="1"),
                                "securityContext": workloads.restricted_container_security(run_as_user=workloads.UNPRIVILEGED_USER),
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        },
    }
