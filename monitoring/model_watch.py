"""What watches one model, as PromQL: its alert rules and its Grafana dashboard (pure builders, stdlib).

The component that deploys a model (components/model/observability.py) turns the model's declaration
into a `WatchedModel` and renders these as a PrometheusRule and a dashboard ConfigMap; the runtime
tests evaluate the very same expressions against real model servers and a real Prometheus.

Requests, 5xx answers and latency come from the Knative queue-proxy's histogram (seconds); what the
model server itself spends comes from the server's own metrics (monitoring/catalog.py says which and
why). Platform-wide rules (generic error rate, traffic compared with yesterday, drift signals, drift
job health) live in monitoring/rules/; the rules here are the ones only the model's declaration can
give: its SLO (availability burn rate, p99 latency), its canary gates, and its drift threshold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from monitoring import catalog
from monitoring.canary.gates import REQUESTS, Gates, error_ratio_query, latency_quantile_query, selector

ModelServer = Literal["mlserver", "kserve"]
PROMETHEUS_DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
# Fires while the stack config says the model's canary is promoted: the source of Alertmanager's
# inhibition of canary-gate alerts left over from the rollout (components/platform/alertmanager.py).
PROMOTED_ALERT = "MlopsModelPromoted"
# A GPU model's GPUs, averaged over the model's pods: idle for an hour means paid-for GPUs doing
# nothing; busy above 90 % (or a GPU's memory nearly full) for 15 minutes means requests queue for it.
GPU_IDLE_PERCENT, GPU_IDLE_FOR = 10, "1h"
GPU_SATURATED_PERCENT, GPU_MEMORY_FULL_SHARE, GPU_SATURATED_FOR = 90, 0.95, "15m"
# Multiwindow burn-rate alerts (Google SRE workbook): (long, short, factor, for, severity).
BURN_RATE_WINDOWS = (("1h", "5m", 14.4, "2m", "critical"), ("6h", "30m", 6.0, "15m", "warning"))


@dataclass(frozen=True)
class WatchedCanary:
    version: str
    traffic_percent: int
    gates: Gates


@dataclass(frozen=True)
class WatchedModel:
    """A model's declaration as monitoring needs it, in plain values."""

    namespace: str
    model: str
    server: ModelServer
    availability: float
    p99_latency_ms: float
    drift_share_threshold: float
    retraining_policy: str
    retraining_trigger: str
    canary: WatchedCanary | None = None
    # GPUs per replica: a GPU model gets GPU panels and alerts (DCGM exporter series).
    gpus: int = 0

    @property
    def matchers(self) -> str:
        return selector(self.namespace, self.model)

    @property
    def splitting(self) -> bool:
        """A new version shares the traffic (a promoted model, at 100 %, has no stable side)."""
        return self.canary is not None and self.canary.traffic_percent < 100


def rule_group(model: WatchedModel) -> dict[str, Any]:
    labels = {"model": model.model, "namespace": model.namespace}
    budget = round(1 - model.availability, 6)
    rules: list[dict[str, Any]] = []
    for long, short, factor, hold, severity in BURN_RATE_WINDOWS:
        threshold = round(factor * budget, 6)
        rules.append(
            {
                "alert": "MlopsModelSloBurnRate" + ("Fast" if severity == "critical" else "Slow"),
                "expr": f"({error_ratio_query(model.matchers, long)}) > {threshold}\nand\n({error_ratio_query(model.matchers, short)}) > {threshold}",
                "for": hold,
                "labels": {**labels, "severity": severity},
                "annotations": {
                    "summary": f"{model.model} burns its {model.availability:.3%} availability budget {factor}x too fast",
                    "description": f"5xx ratio over {long} and {short} is above {threshold} ({factor} x the error budget {budget}).",
                    "runbook": f"mlops canary analyze {model.model} (if a canary is running), then mlops rollback {model.model}.",
                },
            }
        )
    rules.append(
        {
            "alert": "MlopsModelLatencySlo",
            "expr": f"{latency_quantile_query(0.99, model.matchers, '10m')} > {model.p99_latency_ms / 1000:g}",
            "for": "10m",
            "labels": {**labels, "severity": "warning"},
            "annotations": {
                "summary": f"{model.model} p99 latency above its SLO of {model.p99_latency_ms:g} ms",
                "description": "p99 over 10m is {{ $value | humanizeDuration }}.",
            },
        }
    )
    if model.splitting:
        rules += _canary_rules(model, labels)
    elif model.canary is not None:
        rules.append(_promoted_rule(model, labels))
    rules.append(_drift_rule(model, labels))
    if model.gpus > 0:
        rules += _gpu_rules(model, labels)
    return {"name": f"mlops-model-{model.model}", "rules": rules}


def _canary_rules(model: WatchedModel, labels: dict[str, str]) -> list[dict[str, Any]]:
    assert model.canary is not None
    gates, window = model.canary.gates, model.canary.gates.window
    canary = selector(model.namespace, model.model, model.canary.version)
    canary_labels = {**labels, "model_version": model.canary.version, "severity": "critical"}
    rollback = f"Roll back: set mlops:models[{model.model}].canary.trafficPercent to 0 (or mlops rollback {model.model}), pulumi up."
    rules: list[dict[str, Any]] = [
        {
            "alert": "MlopsModelCanaryErrorGate",
            "expr": f"({error_ratio_query(canary, window)}) > {gates.max_error_rate:g}",
            "labels": canary_labels,
            "annotations": {"summary": f"{model.model} canary 5xx ratio above its gate {gates.max_error_rate:g}", "runbook": rollback},
        },
        {
            "alert": "MlopsModelCanaryLatencyGate",
            "expr": f"{latency_quantile_query(0.99, canary, window)} > {gates.max_p99_latency_ms / 1000:g}",
            "labels": canary_labels,
            "annotations": {"summary": f"{model.model} canary p99 above its gate {gates.max_p99_latency_ms:g} ms", "runbook": rollback},
        },
    ]
    if model.canary.traffic_percent > 0:
        # A declared split that sends the canary nothing means the mode ignored it (kserve #5335).
        rules.append(
            {
                "alert": "MlopsModelCanaryNoTraffic",
                "expr": f"sum(rate({REQUESTS}{{{model.matchers}}}[{window}])) > 0\n"
                f"unless\nsum(rate({REQUESTS}{{{canary}}}[{window}])) > 0",
                "for": window,
                "labels": {**canary_labels, "severity": "warning"},
                "annotations": {
                    "summary": f"{model.model} serves traffic but its canary ({model.canary.traffic_percent}%) gets none",
                    "description": "The traffic split is not applied; check the InferenceService status and deployment mode.",
                },
            }
        )
    return rules


def _promoted_rule(model: WatchedModel, labels: dict[str, str]) -> dict[str, Any]:
    """Always firing while the config says promoted; routed to no one, it only inhibits."""
    assert model.canary is not None
    return {
        "alert": PROMOTED_ALERT,
        "expr": "vector(1)",
        "labels": {**labels, "model_version": model.canary.version, "severity": "info"},
        "annotations": {"summary": f"{model.model} {model.canary.version} is promoted: canary-gate alerts are inhibited"},
    }


def _gpu_rules(model: WatchedModel, labels: dict[str, str]) -> list[dict[str, Any]]:
    gpus = model.matchers
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
                "summary": f"{model.model}'s GPUs averaged under {GPU_IDLE_PERCENT}% utilisation for {GPU_IDLE_FOR}",
                "description": "Average GPU utilisation is {{ $value | humanize }}%.",
                "runbook": f"Lower mlops:models[{model.model}].autoscaling.minReplicas or serve it on CPU (resources.gpus 0) if the load stays this low.",
            },
        },
        {
            "alert": "MlopsModelGpuSaturated",
            "expr": f"{utilization} > {GPU_SATURATED_PERCENT}\nor\n{memory_share} > {GPU_MEMORY_FULL_SHARE}",
            "for": GPU_SATURATED_FOR,
            "labels": {**labels, "severity": "warning"},
            "annotations": {
                "summary": f"{model.model}'s GPUs are saturated (utilisation above {GPU_SATURATED_PERCENT}% or memory above {GPU_MEMORY_FULL_SHARE:.0%})",
                "description": "Value {{ $value | humanize }} (percent utilisation, or share of GPU memory used).",
                "runbook": f"Raise mlops:models[{model.model}].autoscaling.maxReplicas (within the GPU pool's maxSize) or lower the autoscaling target.",
            },
        },
    ]


def _drift_rule(model: WatchedModel, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "alert": "MlopsModelDriftAboveThreshold",
        "expr": f'max({catalog.DRIFT_DATASET_SHARE}{{model="{model.model}"}}) >= {model.drift_share_threshold:g}',
        "labels": {**labels, "severity": "warning", "retraining_policy": model.retraining_policy},
        "annotations": {
            "summary": f"{model.model}: share of drifted features at or above {model.drift_share_threshold:g}",
            "description": f"Retraining policy {model.retraining_policy}: {model.retraining_trigger}.",
        },
    }


def dashboard_uid(model: str) -> str:
    """Grafana uids are at most 40 characters; long model names keep a stable hashed tail."""
    uid = f"mlops-model-{model}"
    return uid if len(uid) <= 40 else uid[:31] + "-" + hashlib.sha256(model.encode()).hexdigest()[:8]


Panel = tuple[str, str, list[tuple[str, str]]]


def _serving_panels(model: WatchedModel) -> list[Panel]:
    matchers, by_version = model.matchers, "sum by (model_version)"
    requests = f"rate({REQUESTS}{{{matchers}}}[5m])"
    errors = f'rate({REQUESTS}{{{matchers}, http_response_status_code=~"{catalog.SERVER_ERROR_STATUS}"}}[5m])'
    return [
        ("Requests per second by version", "reqps", [(f"{by_version} ({requests})", "{{model_version}}")]),
        (
            "Traffic share by version",
            "percentunit",
            [(f"{by_version} ({requests}) / ignoring(model_version) group_left sum({requests})", "{{model_version}}")],
        ),
        ("5xx ratio by version", "percentunit", [(f"{by_version} ({errors}) / {by_version} ({requests})", "{{model_version}}")]),
        (
            "Latency by version",
            "s",
            [
                (latency_quantile_query(q, matchers, "5m", by="le, model_version"), f"p{int(q * 100)} {{{{model_version}}}}")
                for q in (0.5, 0.99)
            ],
        ),
    ]


def _model_server_panels(model: WatchedModel) -> list[Panel]:
    """What the model server itself reports: inference outcomes and time inside the server."""
    matchers, by_version = model.matchers, "sum by (model_version)"
    if model.server == "mlserver":
        success, failure = catalog.MLSERVER_INFER_SUCCESS.name, catalog.MLSERVER_INFER_FAILURE.name
        duration = catalog.MLSERVER_INFER_DURATION.name
        return [
            (
                "MLServer inferences per second by outcome",
                "reqps",
                [
                    (f"{by_version} (rate({success}{{{matchers}}}[5m]))", "ok {{model_version}}"),
                    (f"{by_version} (rate({failure}{{{matchers}}}[5m]))", "failed {{model_version}}"),
                ],
            ),
            (
                "MLServer mean inference time",
                "s",
                [
                    (
                        f"{by_version} (rate({duration}_sum{{{matchers}}}[5m])) / {by_version} (rate({duration}_count{{{matchers}}}[5m]))",
                        "{{model_version}}",
                    )
                ],
            ),
        ]
    predict = catalog.KSERVE_PREDICT_DURATION.name
    return [
        ("Model server predictions per second", "reqps", [(f"{by_version} (rate({predict}_count{{{matchers}}}[5m]))", "{{model_version}}")]),
        (
            "Model server predict time p99",
            "s",
            [(f"histogram_quantile(0.99, sum by (le, model_version) (rate({predict}_bucket{{{matchers}}}[5m])))", "{{model_version}}")],
        ),
    ]


def _drift_panels(model: WatchedModel) -> list[Panel]:
    name = model.model
    return [
        ("Dataset drift share", "percentunit", [(f'{catalog.DRIFT_DATASET_SHARE}{{model="{name}"}}', "{{version}}")]),
        ("Feature drift scores", "none", [(f'{catalog.DRIFT_FEATURE_SCORE}{{model="{name}"}}', "{{feature}} ({{method}})")]),
        ("Payload records written", "short", [(f'sum by (version) (rate(mlops_collector_records_written_total{{model="{name}"}}[5m]))', "{{version}}")]),
        ("Drift job status", "none", [(f'{catalog.DRIFT_JOB_STATUS}{{model="{name}"}} == 1', "{{version}} {{status}}")]),
    ]


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


def dashboard(model: WatchedModel) -> dict[str, Any]:
    """The model's Grafana dashboard: traffic, errors and latency per version (canary vs stable), the
    model server's own view, drift."""
    panels = _serving_panels(model) + _model_server_panels(model) + _drift_panels(model)
    return {
        "uid": dashboard_uid(model.model),
        "title": f"Model {model.model}",
        "tags": ["mlops", "model"],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "panels": [_panel(i, title, unit, targets) for i, (title, unit, targets) in enumerate(panels)]
        + (_gpu_row(model, first_id=len(panels) + 1, y=8 * ((len(panels) + 1) // 2)) if model.gpus > 0 else []),
    }


def _gpu_row(model: WatchedModel, first_id: int, y: int) -> list[dict[str, Any]]:
    """A row of three panels, per pod and GPU: utilisation, memory used, power draw (DCGM exporter)."""
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
        panel = _panel(0, title, unit, [(f"max by (pod, gpu) ({family.name}{{{model.matchers}}})", "{{pod}} GPU {{gpu}}")])
        panel["id"] = first_id + 1 + offset
        panel["gridPos"] = {"h": 8, "w": 8, "x": 8 * offset, "y": y + 1}
        panels.append(panel)
    return panels
