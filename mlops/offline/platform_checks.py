"""Checks of a rendered stack against how the clouds behave on the day `mlops validate` runs.

Schemas and policies say whether the objects are well-formed; these say whether the cloud would
still create and run them as meant: a Kubernetes minor still offered (the dated support calendar),
and a CNI that enforces the NetworkPolicies the platform declares (otherwise the API server
accepts them and nothing enforces them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

from components.foundation.gcp.cluster import DATAPLANE_V2
from components.foundation.kubernetes_support import support_verdict
from mlops.offline.render import Rendering


@dataclass(frozen=True)
class PlatformCheck:
    severity: str  # "warning" or "failure"
    check: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.key}: {self.message}"


def kubernetes_support(rendering: Rendering, version: str, today: date) -> list[PlatformCheck]:
    cloud = str(rendering.outputs.get("cloud") or "local")
    prod = rendering.outputs.get("environment") == "prod"
    verdict = support_verdict(cloud, version, today, prod=prod)
    if verdict is None:
        return []
    return [PlatformCheck(verdict.severity, "kubernetes-support", "mlops:cluster.kubernetesVersion", verdict.message)]


NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
# The VPC CNI enforces NetworkPolicies from v1.14 on, with its network policy agent enabled.
VPC_CNI_POLICY_AGENT = (1, 14)


def _vpc_cni_enforces(addon: dict) -> bool:
    match = re.match(r"^v(\d+)\.(\d+)\.", str(addon.get("addonVersion", "")))
    configuration = json.loads(addon.get("configurationValues") or "{}")
    return bool(match) and (int(match[1]), int(match[2])) >= VPC_CNI_POLICY_AGENT and configuration.get("enableNetworkPolicy") == "true"


def network_policy_enforcement(rendering: Rendering) -> list[PlatformCheck]:
    """Fails when NetworkPolicies are declared on a foundation whose CNI would not enforce them."""
    if not rendering.by_type(NETWORK_POLICY):
        return []
    cloud = rendering.outputs.get("cloud")
    if cloud == "aws":
        cnis = [r for r in rendering.by_type("aws:eks/addon:Addon") if r.inputs.get("addonName") == "vpc-cni"]
        if not any(_vpc_cni_enforces(cni.inputs) for cni in cnis):
            return [
                PlatformCheck(
                    "failure",
                    "network-policy-enforcement",
                    "vpc-cni add-on",
                    "the VPC CNI add-on is not >= v1.14 with configuration enableNetworkPolicy: \"true\", so EKS would accept "
                    "the platform's NetworkPolicies and enforce none of them",
                )
            ]
    if cloud == "gcp":
        clusters = rendering.by_type("gcp:container/cluster:Cluster")
        if not any(c.inputs.get("datapathProvider") == DATAPLANE_V2 for c in clusters):
            return [
                PlatformCheck(
                    "failure",
                    "network-policy-enforcement",
                    "GKE cluster",
                    f"the cluster does not run Dataplane V2 (datapathProvider {DATAPLANE_V2}), so GKE would accept the "
                    "platform's NetworkPolicies and enforce none of them",
                )
            ]
    return []


INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"


def request_metrics_source(rendering: Rendering) -> list[PlatformCheck]:
    """Models served without Knative's queue-proxy have no request metrics for their SLO alerts and gates.

    Request counts, errors and latency come from the queue-proxy (monitoring/catalog.py); KServe's
    RawDeployment mode runs no queue-proxy, so the rules, the canary gates and `mlops canary analyze`
    would see no data and never decide. A failure in prod, where models must be observable; a
    warning in dev.
    """
    blind = sorted(
        r.inputs.get("metadata", {}).get("name", r.name)
        for r in rendering.by_type(INFERENCE_SERVICE)
        if (r.inputs.get("metadata", {}).get("annotations") or {}).get("serving.kserve.io/deploymentMode") == "RawDeployment"
    )
    if not blind:
        return []
    severity = "failure" if rendering.outputs.get("environment") == "prod" else "warning"
    return [
        PlatformCheck(
            severity,
            "request-metrics",
            "mlops:kserve.deploymentMode",
            f"RawDeployment runs no Knative queue-proxy, the source of request, error and latency metrics, so the SLO "
            f"alerts and canary gates of {', '.join(blind)} would never see a request; use Serverless (the default)",
        )
    ]


def platform_checks(rendering: Rendering, version: str, today: date) -> list[PlatformCheck]:
    """Every platform check of a rendering; `today` is passed in so tests can freeze it."""
    return kubernetes_support(rendering, version, today) + network_policy_enforcement(rendering) + request_metrics_source(rendering)
