"""One namespace per platform concern, each with Pod Security Admission labels and default-deny.

Default-deny leaves DNS and traffic inside the namespace open. What crosses a namespace boundary
is opened explicitly: ingress to one server by the component that runs it (MLflow, the collector,
the object store, PostgreSQL allow their clients), and the namespace-wide flows below, which every
pod of a namespace needs (model pods reach the platform's services, cloud APIs and the
Pushgateway; the platform's servers reach a managed database and cloud storage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from monitoring import catalog

PLATFORM = "mlops-platform"
MONITORING = "mlops-monitoring"
SERVING = "mlops-serving"
KSERVE = "kserve"
CERT_MANAGER = "cert-manager"
# Knative's activator and the Kourier gateway forward requests to model pods (Serverless mode),
# and Knative's autoscaler scrapes their queue-proxies.
KNATIVE_SERVING = "knative-serving"
KOURIER_SYSTEM = "kourier-system"
ANYWHERE = {"ipBlock": {"cidr": "0.0.0.0/0"}}
HTTPS = 443
POSTGRES = 5432
MLFLOW_PORT = 5000
HTTP_PORT = 8080  # payload collector, retraining hooks, model servers
OBJECT_STORE_PORT = 9000
PUSHGATEWAY_PORT = 9091
QUEUE_PROXY_PORT = 8012
QUEUE_PROXY_AUTOSCALER_PORT = 9090
QUEUE_PROXY_METRICS_PORT = 9091
# MLServer serves its metrics on a port of their own (the KServe Python servers on HTTP_PORT).
MLSERVER_METRICS_PORT = catalog.MLSERVER_METRICS_PORT


def _namespace(name: str) -> dict[str, object]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


@dataclass(frozen=True)
class Flow:
    """Connections every pod of a namespace may make (Egress) or accept (Ingress), on TCP ports."""

    name: str
    direction: Literal["Ingress", "Egress"]
    peers: tuple[dict[str, object], ...]
    ports: tuple[int, ...]

    def policy_spec(self) -> dict[str, object]:
        rule = {"ports": [{"protocol": "TCP", "port": port} for port in self.ports]}
        rule["to" if self.direction == "Egress" else "from"] = list(self.peers)
        return {"podSelector": {}, "policyTypes": [self.direction], self.direction.lower(): [rule]}


PLATFORM_FLOWS = (
    # Managed PostgreSQL (RDS, Cloud SQL) and cloud storage/identity APIs lie outside the cluster.
    Flow("managed-database", "Egress", (ANYWHERE,), (POSTGRES,)),
    Flow("cloud-apis", "Egress", (ANYWHERE,), (HTTPS,)),
)
SERVING_FLOWS = (
    # Storage initializer and drift jobs read buckets; retraining webhooks are HTTPS.
    Flow("cloud-apis", "Egress", (ANYWHERE,), (HTTPS,)),
    Flow("platform-services", "Egress", (_namespace(PLATFORM),), (MLFLOW_PORT, HTTP_PORT, OBJECT_STORE_PORT)),
    Flow("pushgateway", "Egress", (_namespace(MONITORING),), (PUSHGATEWAY_PORT,)),
    Flow(
        "serving-gateways",
        "Ingress",
        (_namespace(KNATIVE_SERVING), _namespace(KOURIER_SYSTEM)),
        (QUEUE_PROXY_PORT, QUEUE_PROXY_AUTOSCALER_PORT, HTTP_PORT),
    ),
    Flow("prometheus", "Ingress", (_namespace(MONITORING),), (QUEUE_PROXY_METRICS_PORT, HTTP_PORT, MLSERVER_METRICS_PORT)),
)


# GKE Workload Identity: pods get their Google tokens from the node's metadata server, which
# Dataplane V2 serves at 169.254.169.252:988 besides the classic 169.254.169.254:80.
GKE_METADATA_FLOWS = (
    Flow("gke-metadata-server", "Egress", ({"ipBlock": {"cidr": "169.254.169.254/32"}},), (80,)),
    Flow("gke-metadata-server-dataplane-v2", "Egress", ({"ipBlock": {"cidr": "169.254.169.252/32"}},), (988,)),
)


@dataclass(frozen=True)
class NamespaceSpec:
    name: str
    # The Pod Security Standard enforced; `restricted` wherever the workloads allow it.
    pod_security: str = "restricted"
    default_deny: bool = True
    flows: tuple[Flow, ...] = ()


@dataclass(frozen=True)
class PlatformNamespacesArgs:
    namespaces: list[NamespaceSpec] = field(
        default_factory=lambda: [
            NamespaceSpec(PLATFORM, flows=PLATFORM_FLOWS),
            # node-exporter needs host namespaces, so monitoring runs at `privileged`.
            NamespaceSpec(MONITORING, pod_security="privileged", default_deny=False),
            NamespaceSpec(SERVING, flows=SERVING_FLOWS),
            NamespaceSpec(KSERVE, default_deny=False),
            NamespaceSpec(CERT_MANAGER, default_deny=False),
        ]
    )
    # Flows the cloud adds to every default-deny namespace (GKE: its metadata server).
    cloud_flows: tuple[Flow, ...] = ()


class PlatformNamespaces(pulumi.ComponentResource):
    """The platform's namespaces; `self.namespaces[name]` is the Namespace resource."""

    namespaces: dict[str, k8s.core.v1.Namespace]

    def __init__(self, name: str, args: PlatformNamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:Namespaces", name, None, opts)
        self.namespaces = {}
        for spec in args.namespaces:
            namespace = k8s.core.v1.Namespace(
                f"{name}-{spec.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=spec.name,
                    labels={
                        "app.kubernetes.io/part-of": "mlops-platform",
                        "pod-security.kubernetes.io/enforce": spec.pod_security,
                        "pod-security.kubernetes.io/enforce-version": "latest",
                        "pod-security.kubernetes.io/warn": "restricted",
                        "pod-security.kubernetes.io/audit": "restricted",
                    },
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.namespaces[spec.name] = namespace
            if spec.default_deny:
                self._default_deny(name, spec.name, namespace)
            for flow in spec.flows + (args.cloud_flows if spec.default_deny else ()):
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-{spec.name}-allow-{flow.name}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=f"allow-{flow.name}", namespace=namespace.metadata.name),
                    spec=flow.policy_spec(),
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.register_outputs({"namespaces": list(self.namespaces)})

    def _default_deny(self, name: str, namespace_name: str, namespace: k8s.core.v1.Namespace) -> None:
        k8s.networking.v1.NetworkPolicy(
            f"{name}-{namespace_name}-default-deny",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=namespace.metadata.name),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"],
                # Egress to DNS and to pods of the same namespace stays open; every ingress flow,
                # and egress leaving the namespace, is opened by the component that needs it.
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=53),
                            k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=53),
                        ]
                    ),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())]
                    ),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
