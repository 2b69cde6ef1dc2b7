"""cert-manager, which issues the KServe webhook's serving certificate.

KServe's chart asks cert-manager for that certificate, so cert-manager (>= 1.15) and its CRDs must
be ready first; the chart installs its own CRDs (`crds.enabled`) and keeps them on uninstall
(`crds.keep`), so removing the release never deletes every Certificate in the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.namespaces import CERT_MANAGER

CHART = "cert-manager"
CHART_VERSION = "v1.21.0"
CHART_REPOSITORY = "https://charts.jetstack.io"


def cert_manager_values() -> dict[str, Any]:
    """Chart values: CRDs installed and kept, requests and limits on every container."""
    return {
        "crds": {"enabled": True, "keep": True},
        "resources": workloads.resources("50m", "128Mi", cpu_limit="500m"),
        "webhook": {"resources": workloads.resources("25m", "64Mi", cpu_limit="250m")},
        "cainjector": {"resources": workloads.resources("25m", "128Mi", cpu_limit="250m")},
        "startupapicheck": {"resources": workloads.resources("10m", "64Mi", cpu_limit="100m")},
    }


@dataclass(frozen=True)
class CertManagerArgs:
    namespace: str = CERT_MANAGER


class CertManager(pulumi.ComponentResource):
    chart: k8s.helm.v4.Chart

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:CertManager", name, None, opts)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-chart",
            name=CHART,
            chart=CHART,
            version=CHART_VERSION,
            namespace=args.namespace,
            repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            values=cert_manager_values(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
