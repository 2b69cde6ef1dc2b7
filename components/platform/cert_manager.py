"""cert-manager, which issues the KServe webhook's serving certificate and the gateway's certificate.

KServe's chart asks cert-manager for that certificate, so cert-manager (>= 1.15) and its CRDs must
be ready first; the chart installs its own CRDs (`crds.enabled`) and keeps them on uninstall
(`crds.keep`), so removing the release never deletes every Certificate in the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.namespaces import CERT_MANAGER

CHART = "cert-manager"
CHART_VERSION = "v1.21.0"
CHART_REPOSITORY = "https://charts.jetstack.io"


def cert_manager_values(service_account_annotations: dict[str, pulumi.Input[str]] | None = None) -> dict[str, Any]:
    """Chart values: CRDs installed and kept, requests and limits on every container, and the cloud
    identity the controller answers ACME DNS-01 challenges under (the gateway's certificate)."""
    values: dict[str, Any] = {
        "crds": {"enabled": True, "keep": True},
        "resources": workloads.resources("50m", "128Mi", cpu_limit="500m"),
        "webhook": {"resources": workloads.resources("25m", "64Mi", cpu_limit="250m")},
        "cainjector": {"resources": workloads.resources("25m", "128Mi", cpu_limit="250m")},
        "startupapicheck": {"resources": workloads.resources("10m", "64Mi", cpu_limit="100m")},
    }
    if service_account_annotations:
        values["serviceAccount"] = {"annotations": dict(service_account_annotations)}
    return values


@dataclass(frozen=True)
class CertManagerArgs:
    namespace: str = CERT_MANAGER
    # Workload identity of the controller's ServiceAccount (Foundation.identity_annotations["cert-manager"]).
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)


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
            values=cert_manager_values(args.service_account_annotations),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
