"""One namespace per platform concern, each with Pod Security Admission labels and default-deny.

Default-deny leaves DNS and traffic inside the namespace open. What crosses a namespace boundary
is opened explicitly: ingress to one server by the component that runs it (MLflow, the collector,
the object store, PostgreSQL allow their clients), and the namespace-wide flows below, which every
pod of a namespace needs (model pods reach the platform's services, cloud APIs and the
Pushgateway; the platform's servers reach a managed database and cloud storage; controllers reach
the API server and receive its admission webhook calls; Prometheus scrapes everything).
Knative's own namespaces (created by its release manifests) get theirs from `KnativeServing`
through `namespace_policies`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components.declarations import SHARED_MODEL_NAMESPACE
from monitoring import catalog

PLATFORM = "mlops-platform"
MONITORING = "mlops-monitoring"
SERVING = SHARED_MODEL_NAMESPACE
KSERVE = "kserve"
CERT_MANAGER = "cert-manager"
# Knative's activator and the Kourier gateway forward requests to model pods (Serverless mode),
# and Knative's autoscaler scrapes their queue-proxies.
KNATIVE_SERVING = "knative-serving"
KOURIER_SYSTEM = "kourier-system"
# Envoy Gateway's namespace: the platform gateway's Envoy proxies run here (components.interfaces).
GATEWAY_NAMESPACE = "envoy-gateway-system"
# Every namespace that runs model pods (the shared serving namespace and each team's) carries this
# label, so platform flows to and from model pods select them all without naming them.
MODEL_NAMESPACE_LABEL = ("mlops-platform/models", "true")
# Namespaces whose HTTPRoutes may attach to the platform's gateway (the platform's, monitoring's and
# every model namespace); routes anywhere else are refused by the Gateway's listener.
GATEWAY_ROUTES_LABEL = ("mlops-platform/gateway-routes", "true")
ANYWHERE = {"ipBlock": {"cidr": "0.0.0.0/0"}}
# Every pod of every namespace. An ipBlock is not enough for pod traffic: the API documents it for
# cluster-external addresses, and Cilium-based dataplanes (GKE Dataplane V2) do not match pods by it.
ANY_POD = {"namespaceSelector": {}}
HTTPS = 443
POSTGRES = 5432
MLFLOW_PORT = 5000
HTTP_PORT = 8080  # payload collector, retraining hooks, model servers
OBJECT_STORE_PORT = 9000
PUSHGATEWAY_PORT = 9091
QUEUE_PROXY_PORT = 8012
QUEUE_PROXY_H2C_PORT = 8013
QUEUE_PROXY_AUTOSCALER_PORT = 9090
QUEUE_PROXY_METRICS_PORT = 9091
# MLServer serves its metrics on a port of their own (the KServe Python servers on HTTP_PORT).
MLSERVER_METRICS_PORT = catalog.MLSERVER_METRICS_PORT
# Managed control planes (EKS, GKE) serve the API on 443; kubeadm-built ones (kind) on 6443.
API_SERVER_PORTS = (HTTPS, 6443)
# Admission webhook servers, called by the API server from outside the pod network: KServe's
# controller (controller-runtime default), cert-manager (chart value webhook.securePort), the
# Prometheus operator (chart value prometheusOperator.tls.internalPort), Knative's webhook.
KSERVE_WEBHOOK_PORT = 9443
CERT_MANAGER_WEBHOOK_PORT = 10250
PROMETHEUS_OPERATOR_WEBHOOK_PORT = 10250
KNATIVE_WEBHOOK_PORT = 8443
GRAFANA_PORT = 3000
# Knative's activator (HTTP/1, h2c) and net-kourier's xDS server, which the gateway pulls routes from.
ACTIVATOR_PORTS = (8012, 8013)
KOURIER_XDS_PORT = 18000
# The Kourier gateway's listeners: external 8080 http and 8443 https, cluster-local 8081
# (net-kourier pkg/config/config.go: HttpPortExternal, HttpsPortExternal, HttpPortInternal), and 8444
# for cluster-local TLS.
KOURIER_GATEWAY_PORTS = (8080, 8081, 8443, 8444)


def _namespace(name: str) -> dict[str, object]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


# Pods of every namespace running models: the shared serving namespace and each team's.
MODEL_NAMESPACES = {"namespaceSelector": {"matchLabels": dict([MODEL_NAMESPACE_LABEL])}}


@dataclass(frozen=True)
class Flow:
    """Connections every pod of a namespace may make (Egress) or accept (Ingress), on TCP ports
    (no ports: any port, for scrapers whose targets declare their own)."""

    name: str
    direction: Literal["Ingress", "Egress"]
    peers: tuple[dict[str, object], ...]
    ports: tuple[int, ...]

    def policy_spec(self) -> dict[str, object]:
        rule: dict[str, object] = {"ports": [{"protocol": "TCP", "port": port} for port in self.ports]} if self.ports else {}
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
    # Requests reach the queue-proxy (HTTP/1 or h2c) from the activator and the Kourier gateway;
    # Knative's autoscaler scrapes its stats port. Nothing outside the pod reaches the server's 8080.
    Flow(
        "knative-serving",
        "Ingress",
        (_namespace(KNATIVE_SERVING),),
        (QUEUE_PROXY_PORT, QUEUE_PROXY_H2C_PORT, QUEUE_PROXY_AUTOSCALER_PORT),
    ),
    Flow("kourier-gateway", "Ingress", (_namespace(KOURIER_SYSTEM),), (QUEUE_PROXY_PORT, QUEUE_PROXY_H2C_PORT)),
    Flow("prometheus", "Ingress", (_namespace(MONITORING),), (QUEUE_PROXY_METRICS_PORT, HTTP_PORT, MLSERVER_METRICS_PORT)),
)


API_SERVER = Flow("api-server", "Egress", (ANYWHERE,), API_SERVER_PORTS)
# Components of one release talk to each other (Grafana to Prometheus, activator to autoscaler).
SAME_NAMESPACE = Flow("same-namespace", "Ingress", ({"podSelector": {}},), ())
PROMETHEUS_SCRAPES = Flow("prometheus", "Ingress", (_namespace(MONITORING),), ())


def admission_webhook(port: int) -> Flow:
    return Flow("admission-webhook", "Ingress", (ANYWHERE,), (port,))


KSERVE_FLOWS = (API_SERVER, admission_webhook(KSERVE_WEBHOOK_PORT), PROMETHEUS_SCRAPES, SAME_NAMESPACE)
# Egress 443 also reaches ACME servers, should an issuer use one.
CERT_MANAGER_FLOWS = (API_SERVER, admission_webhook(CERT_MANAGER_WEBHOOK_PORT), PROMETHEUS_SCRAPES, SAME_NAMESPACE)
MONITORING_FLOWS = (
    SAME_NAMESPACE,
    # Prometheus scrapes pods in every namespace, kubelets and node-exporter on node addresses and
    # the API server; Alertmanager calls retraining webhooks; Grafana's sidecars read the API.
    Flow("scrape-targets", "Egress", (ANY_POD, ANYWHERE), ()),
    admission_webhook(PROMETHEUS_OPERATOR_WEBHOOK_PORT),
    Flow("pushgateway-clients", "Ingress", (MODEL_NAMESPACES,), (PUSHGATEWAY_PORT,)),
    # Grafana's route on the platform gateway.
    Flow("platform-gateway", "Ingress", (_namespace(GATEWAY_NAMESPACE),), (GRAFANA_PORT,)),
)
KNATIVE_SERVING_FLOWS = (
    # The API, and registries the controller resolves image tags at.
    API_SERVER,
    SAME_NAMESPACE,
    admission_webhook(KNATIVE_WEBHOOK_PORT),
    PROMETHEUS_SCRAPES,
    Flow("gateway-to-activator-and-xds", "Ingress", (_namespace(KOURIER_SYSTEM),), (*ACTIVATOR_PORTS, KOURIER_XDS_PORT)),
    # The activator proxies to queue-proxies; the autoscaler scrapes them.
    Flow("model-pods", "Egress", (MODEL_NAMESPACES,), (QUEUE_PROXY_PORT, QUEUE_PROXY_H2C_PORT, QUEUE_PROXY_AUTOSCALER_PORT)),
    # net-kourier's controller probes the gateway pods before marking a route ready.
    Flow("gateway-probes", "Egress", (_namespace(KOURIER_SYSTEM),), KOURIER_GATEWAY_PORTS),
)
KOURIER_SYSTEM_FLOWS = (
    SAME_NAMESPACE,
    Flow("gateway-clients", "Ingress", (ANYWHERE,), KOURIER_GATEWAY_PORTS),
    PROMETHEUS_SCRAPES,
    Flow("activator-and-xds", "Egress", (_namespace(KNATIVE_SERVING),), (*ACTIVATOR_PORTS, KOURIER_XDS_PORT)),
    Flow("model-pods", "Egress", (MODEL_NAMESPACES,), (QUEUE_PROXY_PORT, QUEUE_PROXY_H2C_PORT)),
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
    # Its pods use the cloud's workload identity, so they get the cloud's identity flows.
    cloud_identity: bool = False
    # Labels beyond the platform's and Pod Security Admission's (MODEL_NAMESPACE_LABEL, a team's).
    labels: tuple[tuple[str, str], ...] = ()


def platform_namespace_specs() -> list[NamespaceSpec]:
    """The namespaces every stack has."""
    return [
        NamespaceSpec(PLATFORM, flows=PLATFORM_FLOWS, cloud_identity=True, labels=(GATEWAY_ROUTES_LABEL,)),
        # node-exporter needs host namespaces, so monitoring runs at `privileged` (host-network
        # pods are outside NetworkPolicy; the rest of the namespace is not).
        NamespaceSpec(MONITORING, pod_security="privileged", flows=MONITORING_FLOWS, labels=(GATEWAY_ROUTES_LABEL,)),
        NamespaceSpec(SERVING, flows=SERVING_FLOWS, cloud_identity=True, labels=(MODEL_NAMESPACE_LABEL, GATEWAY_ROUTES_LABEL)),
        NamespaceSpec(KSERVE, flows=KSERVE_FLOWS),
        # Its ACME DNS-01 solver writes the cloud's DNS under the cloud's workload identity.
        NamespaceSpec(CERT_MANAGER, flows=CERT_MANAGER_FLOWS, cloud_identity=True),
    ]


@dataclass(frozen=True)
class PlatformNamespacesArgs:
    namespaces: list[NamespaceSpec] = field(default_factory=platform_namespace_specs)
    # Flows the cloud adds to namespaces whose pods use its workload identity (GKE: its metadata server).
    cloud_flows: tuple[Flow, ...] = ()


class PlatformNamespaces(pulumi.ComponentResource):
    """The platform's namespaces; `self.namespaces[name]` is the Namespace resource."""

    namespaces: dict[str, k8s.core.v1.Namespace]

    def __init__(self, name: str, args: PlatformNamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:Namespaces", name, None, opts)
        self.namespaces = {}
        for spec in args.namespaces:
            self.namespaces[spec.name] = declare_namespace(f"{name}-{spec.name}", spec, args.cloud_flows, pulumi.ResourceOptions(parent=self))
        self.register_outputs({"namespaces": list(self.namespaces)})


def declare_namespace(name: str, spec: NamespaceSpec, cloud_flows: tuple[Flow, ...], opts: pulumi.ResourceOptions) -> k8s.core.v1.Namespace:
    """The Namespace with its Pod Security Admission labels, and its NetworkPolicies."""
    namespace = k8s.core.v1.Namespace(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=spec.name,
            labels={
                "app.kubernetes.io/part-of": "mlops-platform",
                "pod-security.kubernetes.io/enforce": spec.pod_security,
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
                **dict(spec.labels),
            },
        ),
        opts=opts,
    )
    if spec.default_deny:
        namespace_policies(name, namespace.metadata.name, spec.flows + (cloud_flows if spec.cloud_identity else ()), opts)
    else:
        for flow in spec.flows:
            _allow(name, namespace.metadata.name, flow, opts)
    return namespace


def _allow(name: str, namespace: pulumi.Input[str], flow: Flow, opts: pulumi.ResourceOptions) -> None:
    k8s.networking.v1.NetworkPolicy(
        f"{name}-allow-{flow.name}",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"allow-{flow.name}", namespace=namespace),
        spec=flow.policy_spec(),
        opts=opts,
    )


def namespace_policies(name: str, namespace: pulumi.Input[str], flows: tuple[Flow, ...], opts: pulumi.ResourceOptions) -> None:
    """Default-deny in `namespace`, then one NetworkPolicy per flow it needs."""
    _default_deny(name, namespace, opts)
    for flow in flows:
        _allow(name, namespace, flow, opts)


def _default_deny(name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
    k8s.networking.v1.NetworkPolicy(
        f"{name}-default-deny",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=namespace),
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
        opts=opts,
    )
