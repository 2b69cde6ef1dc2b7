"""The platform's one external entry point: Envoy Gateway serving a Gateway API `Gateway`.

- Controller: chart `gateway-helm` (it installs the Gateway API and Envoy Gateway CRDs). Its image
  and its proxies' image are platform images, so with `mlops:images.source: stackRegistry` they come
  from the stack's registry like the others. The chart turns `global.images.envoyGateway.image` into
  the controller's image and the proxies' shutdown manager's image (templates/_helpers.tpl
  `eg.image`, which splits at the first `/` and the first `:` after it and joins the parts again,
  so a `registry/path/name@sha256:...` reference survives it).
- Data plane: GatewayClass `mlops` points at an EnvoyProxy that names the proxies' Service
  GATEWAY_SERVICE and sets its type, annotations, address and source ranges from the cloud's
  `GatewayExposure`: the cloud's load balancer binds to that Service by name.
- Gateway `mlops`: an HTTPS listener for `*.<domain>` terminating TLS with the wildcard certificate,
  and an HTTP listener whose only route redirects to HTTPS. Routes attach to the HTTPS listener only
  from namespaces labelled GATEWAY_ROUTES_LABEL (the platform's and the model namespaces).
- TLS: cert-manager issues the certificate for `<domain>` and `*.<domain>` from Let's Encrypt with
  the cloud's DNS-01 solver, or the stack provides it as a Pulumi secret.
- Network: the gateway namespace's default-deny opens what Envoy Gateway v1.9.0 uses (ports cited
  below); the targets' side (Kourier's cluster-local listener, RawDeployment predictors) is opened
  here too, since these flows exist only with the gateway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.declarations import AcmeTls, GatewayTls
from components.interfaces import GATEWAY_HTTPS_PORT, GATEWAY_NAME, GATEWAY_NAMESPACE, GATEWAY_SERVICE, GatewayExposure
from components.namespaces import (
    ANYWHERE,
    API_SERVER,
    GATEWAY_ROUTES_LABEL,
    GRAFANA_PORT,
    HTTP_PORT,
    HTTPS,
    KOURIER_SYSTEM,
    MLFLOW_PORT,
    MODEL_NAMESPACE_LABEL,
    MONITORING,
    PLATFORM,
    Flow,
    NamespaceSpec,
    admission_webhook,
)

CHART = "gateway-helm"
CHART_VERSION = "v1.9.0"
CHART_REPOSITORY = "oci://docker.io/envoyproxy"
GATEWAY_CLASS = "mlops"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
ENVOY_PROXY = "mlops"
TLS_SECRET = "mlops-gateway-tls"
CERTIFICATE = "mlops-gateway"
CLUSTER_ISSUER = "mlops-gateway"
ACME_ACCOUNT_SECRET = "mlops-gateway-acme-account"
HTTP_REDIRECT_ROUTE = "https-redirect"
GATEWAY_HTTP_PORT = 80
LETSENCRYPT_SERVERS: dict[str, str] = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}

# Envoy Gateway v1.9.0's ports. The proxies pull their configuration from the controller's xDS server
# (internal/xds/bootstrap/bootstrap.go DefaultXdsServerPort); the controller serves the topology
# injector webhook, which the API server calls (charts/gateway-helm/templates/
# envoy-proxy-topology-injector-webhook.yaml); controller and proxies serve Prometheus metrics on the
# same port (api/v1alpha1/envoygateway_types.go GatewayMetricsPort, bootstrap.go EnvoyStatsPort).
XDS_PORT = 18000
WEBHOOK_PORT = 9443
METRICS_PORT = 19001
# A listener on a port below 1024 is bound by the proxy container 10000 higher, so that Envoy needs
# no NET_BIND_SERVICE capability (internal/gatewayapi/translator.go minEphemeralPort and
# wellKnownPortShift, applied in listener.go): Service port 443 targets container port 10443.
MIN_UNPRIVILEGED_PORT = 1024
WELL_KNOWN_PORT_SHIFT = 10000
# Labels Envoy Gateway puts on every proxy pod (internal/infrastructure/kubernetes/proxy/resource.go
# EnvoyAppLabel) and the owning Gateway's (internal/gatewayapi/translator.go OwningGatewayNameLabel).
PROXY_LABELS: dict[str, str] = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
    "gateway.envoyproxy.io/owning-gateway-name": GATEWAY_NAME,
    "gateway.envoyproxy.io/owning-gateway-namespace": GATEWAY_NAMESPACE,
}
# Envoy Gateway runs its proxies as this user (resource.go expectedEnvoySecurityContext).
PROXY_USER = 65532
# Kourier's gateway pods and its cluster-local listener (the `kourier-internal` Service's target;
# net-kourier pkg/config/config.go HttpPortInternal).
KOURIER_GATEWAY_LABELS: dict[str, str] = {"app": "3scale-kourier-gateway"}
KOURIER_INTERNAL_PORT = 8081


def proxy_container_port(service_port: int) -> int:
    """The port the Envoy container binds for a Gateway listener's port."""
    return service_port + WELL_KNOWN_PORT_SHIFT if service_port < MIN_UNPRIVILEGED_PORT else service_port


def _namespace_labelled(label: tuple[str, str]) -> dict[str, object]:
    return {"namespaceSelector": {"matchLabels": dict([label])}}


GATEWAY_FLOWS = (
    API_SERVER,
    admission_webhook(WEBHOOK_PORT),
    # The proxies fetch listeners, routes and certificates from the controller.
    Flow("xds", "Ingress", ({"podSelector": {}},), (XDS_PORT,)),
    # Clients reach the listeners through the cloud's load balancer (or a port-forward on local);
    # which client ranges may is the load balancer's business (sourceCidrs).
    Flow(
        "gateway-clients",
        "Ingress",
        (ANYWHERE,),
        (proxy_container_port(GATEWAY_HTTPS_PORT), proxy_container_port(GATEWAY_HTTP_PORT)),
    ),
    Flow("prometheus", "Ingress", (workloads.namespace_pods(MONITORING),), (METRICS_PORT,)),
    # Backends: Serverless models through Kourier's cluster-local listener, RawDeployment predictors
    # directly, MLflow and Grafana.
    Flow("knative-gateway", "Egress", (workloads.namespace_pods(KOURIER_SYSTEM, KOURIER_GATEWAY_LABELS),), (KOURIER_INTERNAL_PORT,)),
    Flow("model-servers", "Egress", (_namespace_labelled(MODEL_NAMESPACE_LABEL),), (HTTP_PORT,)),
    Flow("mlflow", "Egress", (workloads.namespace_pods(PLATFORM),), (MLFLOW_PORT,)),
    Flow("grafana", "Egress", (workloads.namespace_pods(MONITORING),), (GRAFANA_PORT,)),
    # Identity providers' JWKS and OIDC endpoints.
    Flow("identity-providers", "Egress", (ANYWHERE,), (HTTPS,)),
)


def gateway_namespace() -> NamespaceSpec:
    """The namespace of the controller, the proxies and the Gateway (created only with the gateway)."""
    return NamespaceSpec(GATEWAY_NAMESPACE, flows=GATEWAY_FLOWS)


def gateway_helm_values(controller_image: pulumi.Input[str]) -> dict[str, Any]:
    """Chart values: the controller's image (and so the shutdown manager's), requests and a memory
    limit (the chart's resources have no CPU limit key; Helm would merge one in, `mlops validate`
    reports it as unknown)."""
    return {
        "global": {"images": {"envoyGateway": {"image": controller_image}}},
        "deployment": {"envoyGateway": {"resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}}},
    }


def envoy_proxy_spec(exposure: GatewayExposure, proxy_image: pulumi.Input[str], replicas: int) -> dict[str, Any]:
    """EnvoyProxy spec: the proxies' Deployment and the Service the cloud's load balancer binds to.

    The containers keep Envoy Gateway's own security contexts, which the restricted Pod Security
    Standard admits (non-root 65532, no privilege escalation, every capability dropped, RuntimeDefault
    seccomp); setting one here would replace the shutdown manager's too, and it writes its drain
    marker to the root filesystem (resource.go expectedShutdownManagerSecurityContext).
    """
    service: dict[str, Any] = {"name": GATEWAY_SERVICE, "type": exposure.service_type}
    if exposure.service_annotations:
        service["annotations"] = dict(exposure.service_annotations)
    if exposure.service_type == "LoadBalancer":
        # Local: no second hop through another node, so the proxies see the client's address.
        service["externalTrafficPolicy"] = "Local"
        if exposure.load_balancer_ip is not None:
            service["loadBalancerIP"] = exposure.load_balancer_ip
        if exposure.source_cidrs:
            service["loadBalancerSourceRanges"] = list(exposure.source_cidrs)
    pod: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": PROXY_USER,
            "runAsGroup": PROXY_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    kubernetes: dict[str, Any] = {
        "envoyDeployment": {
            "replicas": replicas,
            "pod": pod,
            "container": {"image": proxy_image, "resources": workloads.resources("200m", "256Mi", cpu_limit="1")},
        },
        "envoyService": service,
    }
    if replicas > 1:
        # Replicas on different nodes, and a drain or upgrade never takes them all at once.
        pod["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {"labelSelector": {"matchLabels": PROXY_LABELS}, "topologyKey": "kubernetes.io/hostname"},
                    }
                ]
            }
        }
        kubernetes["envoyPDB"] = {"minAvailable": replicas - 1}
    return {"provider": {"type": "Kubernetes", "kubernetes": kubernetes}}


def gateway_spec(domain: str) -> dict[str, Any]:
    """Gateway `mlops`: HTTPS for every host under the domain, HTTP only to redirect."""
    routes_from_labelled = {"namespaces": {"from": "Selector", "selector": {"matchLabels": dict([GATEWAY_ROUTES_LABEL])}}}
    return {
        "gatewayClassName": GATEWAY_CLASS,
        "listeners": [
            {
                "name": "https",
                "protocol": "HTTPS",
                "port": GATEWAY_HTTPS_PORT,
                "hostname": f"*.{domain}",
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "group": "", "name": TLS_SECRET}]},
                "allowedRoutes": {**routes_from_labelled, "kinds": [{"kind": "HTTPRoute"}]},
            },
            {
                "name": "http",
                "protocol": "HTTP",
                "port": GATEWAY_HTTP_PORT,
                "hostname": f"*.{domain}",
                # Only the redirect below, which lives in the gateway's own namespace.
                "allowedRoutes": {"namespaces": {"from": "Same"}, "kinds": [{"kind": "HTTPRoute"}]},
            },
        ],
    }


def https_redirect_spec() -> dict[str, Any]:
    return {
        "parentRefs": [{"name": GATEWAY_NAME, "sectionName": "http"}],
        "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}],
    }


def cluster_issuer_spec(acme: AcmeTls, domain: str, dns01_solver: dict[str, pulumi.Input[object]]) -> dict[str, Any]:
    """Let's Encrypt with the cloud's DNS-01 solver, for the gateway's domain only."""
    return {
        "acme": {
            "email": acme.email,
            "server": LETSENCRYPT_SERVERS[acme.server],
            "privateKeySecretRef": {"name": ACME_ACCOUNT_SECRET},
            "solvers": [{"selector": {"dnsZones": [domain]}, "dns01": dns01_solver}],
        }
    }


def certificate_spec(domain: str) -> dict[str, Any]:
    return {
        "secretName": TLS_SECRET,
        "dnsNames": [domain, f"*.{domain}"],
        "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": CLUSTER_ISSUER},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
    }


@dataclass(frozen=True)
class GatewayArgs:
    domain: str
    tls: GatewayTls
    exposure: GatewayExposure
    controller_image: pulumi.Input[str]
    proxy_image: pulumi.Input[str]
    # Proxy replicas: 2 in prod, spread over nodes and covered by a disruption budget.
    replicas: int
    deployment_mode: Literal["Serverless", "RawDeployment"]
    # Namespaces running model pods: RawDeployment predictors accept the proxies there.
    model_namespaces: Sequence[str]
    # cert-manager (its CRDs) comes before the ClusterIssuer and the Certificate.
    cert_manager: Sequence[pulumi.Resource] = ()
    # Serverless: Kourier's namespace exists once Knative is installed.
    knative: Sequence[pulumi.Resource] = ()
    # The Prometheus operator's CRDs: the proxies' PodMonitor needs them.
    monitoring_crds: Sequence[pulumi.Resource] = ()
    namespace: str = GATEWAY_NAMESPACE


class Gateway(pulumi.ComponentResource):
    chart: k8s.helm.v4.Chart
    gateway: k8s.apiextensions.CustomResource
    domain: str
    address: pulumi.Output[str] | None
    # What routes and policies attached to the gateway wait for (its CRDs and the Gateway itself).
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:Gateway", name, None, opts)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-controller",
            name="envoy-gateway",
            chart=f"{CHART_REPOSITORY}/{CHART}",
            version=CHART_VERSION,
            namespace=args.namespace,
            values=gateway_helm_values(args.controller_image),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.gateway = self._create_gateway(name, args)
        self._create_tls(name, args)
        self._open_backends(name, args)
        self._scrape_proxies(name, args)
        self.domain = args.domain
        self.address = pulumi.Output.from_input(args.exposure.address) if args.exposure.address is not None else None
        self.ready = [self.chart, self.gateway]
        self.register_outputs({"domain": self.domain, "address": self.address, "service": GATEWAY_SERVICE})

    def _scrape_proxies(self, name: str, args: GatewayArgs) -> None:
        """Prometheus scrapes every proxy's Envoy statistics: requests, response codes, latencies and
        upstream health of each route, including the 401/403/429 the policies answer. The proxies serve
        them on container port `metrics` at /stats/prometheus (internal/infrastructure/kubernetes/proxy/
        resource.go expectedProxyContainers, internal/xds/bootstrap/bootstrap.yaml.tpl, v1.9.0)."""
        self._custom(
            f"{name}-proxy-metrics",
            "monitoring.coreos.com/v1",
            "PodMonitor",
            {"name": "envoy-proxies", "namespace": args.namespace, "labels": workloads.labels("envoy-gateway", "monitoring")},
            {
                "selector": {"matchLabels": PROXY_LABELS},
                "podMetricsEndpoints": [{"port": "metrics", "path": "/stats/prometheus", "interval": "30s"}],
            },
            [*args.monitoring_crds],
        )

    def _custom(
        self, name: str, api_version: str, kind: str, metadata: dict[str, Any], spec: dict[str, Any], depends_on: Sequence[pulumi.Resource]
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            name,
            api_version=api_version,
            kind=kind,
            metadata=metadata,
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )

    def _create_gateway(self, name: str, args: GatewayArgs) -> k8s.apiextensions.CustomResource:
        # The chart installs the CRDs; the cloud's load balancer controller must be running before
        # the Service it binds to appears.
        crds = [self.chart, *args.exposure.ready]
        labels = workloads.labels("gateway", "gateway")
        proxy = self._custom(
            f"{name}-envoy-proxy",
            "gateway.envoyproxy.io/v1alpha1",
            "EnvoyProxy",
            {"name": ENVOY_PROXY, "namespace": args.namespace, "labels": labels},
            envoy_proxy_spec(args.exposure, args.proxy_image, args.replicas),
            crds,
        )
        gateway_class = self._custom(
            f"{name}-class",
            "gateway.networking.k8s.io/v1",
            "GatewayClass",
            {"name": GATEWAY_CLASS, "labels": labels},
            {
                "controllerName": CONTROLLER_NAME,
                "parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": ENVOY_PROXY, "namespace": args.namespace},
            },
            [*crds, proxy],
        )
        gateway = self._custom(
            f"{name}-gateway",
            "gateway.networking.k8s.io/v1",
            "Gateway",
            {"name": GATEWAY_NAME, "namespace": args.namespace, "labels": labels},
            gateway_spec(args.domain),
            [*crds, gateway_class],
        )
        self._custom(
            f"{name}-https-redirect",
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            {"name": HTTP_REDIRECT_ROUTE, "namespace": args.namespace, "labels": labels},
            https_redirect_spec(),
            [self.chart, gateway],
        )
        return gateway

    def _create_tls(self, name: str, args: GatewayArgs) -> None:
        """The wildcard certificate's Secret: provided in config, or issued by cert-manager (one of the two is set)."""
        labels = workloads.labels("gateway", "tls")
        provided, acme = args.tls.provided, args.tls.acme
        if provided is not None:
            k8s.core.v1.Secret(
                f"{name}-tls",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=TLS_SECRET, namespace=args.namespace, labels=labels),
                type="kubernetes.io/tls",
                string_data={"tls.crt": provided.certificate, "tls.key": pulumi.Output.secret(provided.private_key)},
                opts=pulumi.ResourceOptions(parent=self),
            )
        if acme is not None:
            if args.exposure.dns01_solver is None:
                raise ValueError("mlops:gateway.tls.issuer is 'acme' but this cloud offers no DNS-01 solver; use tls.issuer 'provided'")
            issuer = self._custom(
                f"{name}-issuer",
                "cert-manager.io/v1",
                "ClusterIssuer",
                {"name": CLUSTER_ISSUER, "labels": labels},
                cluster_issuer_spec(acme, args.domain, args.exposure.dns01_solver),
                args.cert_manager,
            )
            self._custom(
                f"{name}-certificate",
                "cert-manager.io/v1",
                "Certificate",
                {"name": CERTIFICATE, "namespace": args.namespace, "labels": labels},
                certificate_spec(args.domain),
                [*args.cert_manager, issuer],
            )

    def _open_backends(self, name: str, args: GatewayArgs) -> None:
        """Ingress on the backends' side: only the gateway's proxies, only on the port they call."""
        proxies = [workloads.namespace_pods(args.namespace, PROXY_LABELS)]
        if args.deployment_mode == "Serverless":
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{KOURIER_SYSTEM}-allow-platform-gateway",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-platform-gateway", namespace=KOURIER_SYSTEM),
                spec=workloads.allow_ingress_spec(KOURIER_GATEWAY_LABELS, KOURIER_INTERNAL_PORT, proxies),
                # Knative's release manifests create the namespace.
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.knative)),
            )
            return
        for namespace in args.model_namespaces:
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{namespace}-allow-platform-gateway",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-platform-gateway", namespace=namespace),
                # Every pod of the namespace: which model is public is the routes' business.
                spec={
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": proxies, "ports": [{"protocol": "TCP", "port": HTTP_PORT}]}],
                },
                opts=pulumi.ResourceOptions(parent=self),
            )

