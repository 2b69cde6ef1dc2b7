"""NVIDIA's DCGM exporter on every GPU node, so a GPU model's utilisation, memory and power are seen.

The dcgm-exporter chart (4.8.2, NVIDIA/dcgm-exporter tag 4.5.3-4.8.2) runs a DaemonSet whose
exporter labels each GPU's series with the pod holding it (`namespace`, `pod`, `container`;
internal/pkg/transformation/const.go) and, with `kubernetes.enablePodLabels`, with that pod's
labels, names sanitised to `[a-zA-Z0-9_]` (internal/pkg/utils/utils.go). The platform lets only
its model labels through and renames them to the `model` / `model_version` labels every model
query uses. `honorLabels` keeps the exporter's `namespace`/`pod` (the GPU's pod) instead of the
exporter's own target labels. The counters the platform reads are in monitoring/catalog.py.

It runs in kube-system beside the device plugin: the exporter runs as root with SYS_ADMIN (the
chart's default, needed for the DCGM_FI_PROF_* counters), which no platform namespace's Pod
Security level admits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.interfaces import GpuPlacement
from components.model.serving import MODEL_LABEL, VERSION_LABEL

CHART = "dcgm-exporter"
CHART_VERSION = "4.8.2"
CHART_REPOSITORY = "https://nvidia.github.io/dcgm-exporter/helm-charts"
NAMESPACE = "kube-system"


def exported_label(pod_label: str) -> str:
    """The exporter's name for a pod label (every character outside [a-zA-Z0-9_] becomes `_`)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in pod_label)


def _model_labels() -> list[dict[str, Any]]:
    relabelings: list[dict[str, Any]] = [
        {"action": "replace", "sourceLabels": [exported_label(pod_label)], "targetLabel": target}
        for pod_label, target in ((MODEL_LABEL, "model"), (VERSION_LABEL, "model_version"))
    ]
    relabelings.append({"action": "labeldrop", "regex": f"{exported_label(MODEL_LABEL)}(_version)?"})
    return relabelings


def _on_gpu_nodes(placements: Sequence[GpuPlacement]) -> dict[str, Any]:
    """Node affinity matching any GPU pool's selector (one term per pool: terms are ORed)."""
    terms = [
        {"matchExpressions": [{"key": key, "operator": "In", "values": [value]} for key, value in sorted(p.node_selector.items())]}
        for p in placements
    ]
    unique = [term for index, term in enumerate(terms) if term not in terms[:index]]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": unique}}}


def dcgm_exporter_values(placements: Sequence[GpuPlacement]) -> dict[str, Any]:
    tolerations: list[dict[str, str]] = []
    for placement in placements:
        tolerations += [dict(t) for t in placement.tolerations if dict(t) not in tolerations]
    return {
        "affinity": _on_gpu_nodes(placements),
        # Replaces the chart's default (control-plane nodes, which have no GPUs here).
        "tolerations": tolerations,
        "kubernetes": {
            "enablePodLabels": True,
            "podLabelAllowlistRegex": [f"^{MODEL_LABEL.replace('.', '[.]')}$", f"^{VERSION_LABEL.replace('.', '[.]')}$"],
        },
        "serviceMonitor": {"enabled": True, "interval": "15s", "honorLabels": True, "metricRelabelings": _model_labels()},
    }


@dataclass(frozen=True)
class GpuMetricsArgs:
    placements: Sequence[GpuPlacement]
    # The Prometheus operator's CRDs: the chart renders a ServiceMonitor.
    monitoring_crds: Sequence[pulumi.Resource] = field(default_factory=tuple)


class GpuMetrics(pulumi.ComponentResource):
    chart: k8s.helm.v4.Chart

    def __init__(self, name: str, args: GpuMetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:GpuMetrics", name, None, opts)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-dcgm-exporter",
            name=CHART,
            chart=CHART,
            version=CHART_VERSION,
            namespace=NAMESPACE,
            repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            values=dcgm_exporter_values(args.placements),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.monitoring_crds)),
        )
        self.register_outputs({})
