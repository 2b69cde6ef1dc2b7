"""The NVIDIA device plugin, which advertises `nvidia.com/gpu` on GPU nodes (and only there)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

CHART = "nvidia-device-plugin"
CHART_VERSION = "0.20.0"
CHART_REPOSITORY = "https://nvidia.github.io/k8s-device-plugin"
# Critical node add-ons live in kube-system, which exists on every cluster before any namespace
# the platform creates.
NAMESPACE = "kube-system"


def device_plugin_values(gpu_node_labels: dict[str, str], gpu_tolerations: list[dict[str, str]]) -> dict[str, object]:
    """Chart values pinning the DaemonSet to GPU nodes and tolerating only the GPU taint."""
    return {
        "nodeSelector": dict(gpu_node_labels),
        # Replaces the chart's default list, which also tolerates CriticalAddonsOnly.
        "tolerations": [dict(t) for t in gpu_tolerations],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    }


@dataclass(frozen=True)
class NvidiaDevicePluginArgs:
    gpu_node_labels: dict[str, str]
    gpu_tolerations: list[dict[str, str]]
    # The GPU node groups: the DaemonSet is removed before them on destroy.
    wait_for: Sequence[pulumi.Resource] = field(default_factory=tuple)


class NvidiaDevicePlugin(pulumi.ComponentResource):
    chart: k8s.helm.v4.Chart

    def __init__(self, name: str, args: NvidiaDevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:NvidiaDevicePlugin", name, None, opts)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-chart",
            name=CHART,
            chart=CHART,
            version=CHART_VERSION,
            namespace=NAMESPACE,
            repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            values=device_plugin_values(args.gpu_node_labels, args.gpu_tolerations),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for)),
        )
        self.register_outputs({})
