"""What a cloud foundation hands to the cloud-agnostic in-cluster layer.

AWS, GCP and local foundations each produce a `Foundation`; MLflow, KServe, monitoring and the
model deployments read only these fields, so they render the same on every target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components.images import ImageResolver, as_configured
from components.namespaces import GATEWAY_NAMESPACE, PLATFORM, SERVING, Flow

Workload = Literal["mlflow", "storage-initializer", "payload-collector", "drift-job", "training-job", "batch-job"]
WORKLOADS: tuple[Workload, ...] = ("mlflow", "storage-initializer", "payload-collector", "drift-job", "training-job", "batch-job")

# (namespace, Kubernetes service account) of each workload: what cloud identities bind to. KServe's
# storage initializer runs in the model server pods, under their service account.
WORKLOAD_SERVICE_ACCOUNTS: dict[Workload, tuple[str, str]] = {
    "mlflow": (PLATFORM, "mlflow"),
    "payload-collector": (PLATFORM, "payload-collector"),
    "storage-initializer": (SERVING, "model-server"),
    "drift-job": (SERVING, "drift-job"),
    "training-job": (SERVING, "training-job"),
    "batch-job": (SERVING, "batch-job"),
}
# Workloads that run beside the models: their service account exists in every namespace running models
# (the shared serving namespace and each team's), and their cloud identity admits all of them.
MODEL_WORKLOADS: frozenset[Workload] = frozenset({"storage-initializer", "drift-job", "training-job", "batch-job"})


def workload_namespaces(workload: Workload, model_namespaces: Sequence[str]) -> tuple[str, ...]:
    """The namespaces whose `WORKLOAD_SERVICE_ACCOUNTS[workload]` service account the workload's cloud identity admits."""
    return tuple(model_namespaces) if workload in MODEL_WORKLOADS else (WORKLOAD_SERVICE_ACCOUNTS[workload][0],)


def service_accounts_text(namespaces: Sequence[str], service_account: str) -> str:
    """`<namespace>/<name>`, or how many namespaces hold the service account when there are several."""
    if len(namespaces) == 1:
        return f"{namespaces[0]}/{service_account}"
    return f"{service_account} in {namespaces[0]} and {len(namespaces) - 1} team namespace(s)"


@dataclass(frozen=True)
class ObjectStore:
    """Buckets and how to reach them. `endpoint` is None where the cloud's default endpoint applies."""

    scheme: Literal["s3", "gs"]
    artifact_bucket: pulumi.Input[str]
    payload_bucket: pulumi.Input[str]
    endpoint: pulumi.Input[str] | None = None
    region: str | None = None
    # Name of a Secret (same name in every platform namespace) holding AWS_ACCESS_KEY_ID and
    # AWS_SECRET_ACCESS_KEY; only the in-cluster S3 server needs one, clouds use workload identity.
    credentials_secret: str | None = None

    def uri(self, bucket: pulumi.Input[str], prefix: str = "") -> pulumi.Output[str]:
        return pulumi.Output.concat(f"{self.scheme}://", bucket, f"/{prefix}" if prefix else "")


@dataclass(frozen=True)
class Database:
    """PostgreSQL for the MLflow backend store."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    name: str
    username: str
    password: pulumi.Output[str]  # always a Pulumi secret


@dataclass(frozen=True)
class GpuPlacement:
    """How a pod lands on one GPU pool."""

    node_selector: dict[str, str]
    tolerations: list[dict[str, str]]


# The gateway's Envoy proxies, and the Gateway object itself, run in Envoy Gateway's controller
# namespace, GATEWAY_NAMESPACE (its default ControllerNamespace deployment mode; defined with the other
# namespaces in components.namespaces, whose flows name it); EnvoyProxy names their Service, so
# the cloud's load balancer can bind to it by name.
GATEWAY_NAME = "mlops"
GATEWAY_SERVICE = "mlops-gateway"
GATEWAY_HTTPS_PORT = 443


@dataclass(frozen=True)
class GatewayExposure:
    """How the cloud puts a load balancer the stack declares in front of the gateway's Envoy Service.

    The in-cluster gateway (`components.platform.gateway`) writes `service_type`, `service_annotations`,
    `load_balancer_ip` and `source_cidrs` into its EnvoyProxy; the cloud side owns the load balancer,
    its DNS records and, on AWS, the TargetGroupBinding registering Envoy's pods in its target group.
    """

    service_type: Literal["ClusterIP", "LoadBalancer"]
    service_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    load_balancer_ip: pulumi.Input[str] | None = None
    source_cidrs: tuple[str, ...] = ()
    # cert-manager's ACME DNS-01 solver for the cloud's DNS (`route53` / `cloudDNS` block), None where
    # the certificate is provided.
    dns01_solver: dict[str, pulumi.Input[object]] | None = None
    # What the gateway's domain resolves to (load balancer DNS name or address), exported.
    address: pulumi.Input[str] | None = None
    # Resources the gateway must be created after (the load balancer controller, its CRDs).
    ready: list[pulumi.Resource] = field(default_factory=list)
    # What registers Envoy's pods with the load balancer (AWS: a TargetGroupBinding). It lives in
    # the gateway's namespace, which the platform namespaces create after the foundation, so the
    # program calls it once they exist, passing them to depend on.
    bind_targets: Callable[[pulumi.Resource], pulumi.Resource] | None = None


@dataclass(frozen=True)
class Foundation:
    provider: k8s.Provider
    cluster_name: pulumi.Input[str]
    object_store: ObjectStore
    database: Database
    # Annotations that bind a Kubernetes ServiceAccount to the workload's cloud identity
    # (IRSA role ARN, GKE Workload Identity service account); empty on local.
    identity_annotations: dict[str, dict[str, pulumi.Input[str]]] = field(default_factory=dict)
    gpu_placements: dict[str, GpuPlacement] = field(default_factory=dict)
    # Resources the in-cluster layer must be created after and destroyed before (node groups),
    # so `pulumi destroy` removes workloads while nodes still exist.
    cluster_ready: list[pulumi.Resource] = field(default_factory=list)
    # Egress the cloud's workload identity needs from every default-deny namespace.
    namespace_flows: tuple[Flow, ...] = ()
    # The reference the cluster pulls for a configured image (as configured, or from the stack's registry by digest).
    resolve_image: ImageResolver = as_configured
    # Set when mlops:gateway is enabled: the cloud's load balancer in front of the gateway.
    gateway_exposure: GatewayExposure | None = None
    outputs: dict[str, pulumi.Input[object]] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformServices:
    """What the in-cluster platform offers model deployments."""

    tracking_uri: pulumi.Input[str]
    # HTTP sink of the KServe inference logger (the payload collector).
    collector_url: pulumi.Input[str]
    pushgateway_url: pulumi.Input[str]
    # Image running the payload collector and the drift job.
    runtime_image: pulumi.Input[str]
    # CRD-installing releases (KServe, Prometheus operator): custom resources depend on them,
    # otherwise the API server answers "no matches for kind".
    crds_ready: list[pulumi.Resource] = field(default_factory=list)
    outputs: dict[str, pulumi.Input[object]] = field(default_factory=dict)
