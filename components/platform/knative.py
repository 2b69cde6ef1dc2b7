"""Knative Serving and its Kourier networking layer: what KServe's Serverless mode runs on.

- The upstream release manifests, pinned by release tag (their images are pinned by digest
  upstream), applied in order: CRDs, core, networking layer. They are fetched by the Kubernetes
  provider at deploy time; nothing upstream is vendored into this repository.
- Kourier rather than Istio: KServe needs an ingress for Knative routes, not a service mesh, and
  Kourier is one Envoy Deployment and a controller. KServe is told not to create Istio
  VirtualServices (`components.platform.kserve`).
- Routes stay in the cluster: no domain is configured, so Knative gives every route the
  `svc.cluster.local` domain, and the Kourier gateway Service is made ClusterIP so that no
  cloud load balancer is created behind the platform's back (one that would also outlive
  `pulumi destroy` of the network it sits in). Exposing models is a deliberate later step.
- Knative rejects pod fields it has not been told to allow; `POD_FEATURES` enables the ones the
  platform's InferenceServices set (`components.model.serving`).
- `config-deployment`: Knative fails a revision that is not ready within its progress deadline,
  which must be as long as Pulumi waits for the InferenceService (a GPU model may first wait for a
  node to scale up from zero; the composition passes that wait in); and the queue-proxy it adds to
  every model pod gets limits as well as requests, like every other container of the platform.
- `config-observability`: the queue-proxy's request metrics, which every model's SLO alerts, canary
  gates and dashboard read (monitoring/catalog.py), are exported only when this is set.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.pod_requests import QUEUE_PROXY_RESOURCES
from components.namespaces import KNATIVE_SERVING_FLOWS, KOURIER_SYSTEM_FLOWS, namespace_policies

SERVING_VERSION = "knative-v1.21.3"
KOURIER_VERSION = "knative-v1.21.1"
SERVING_RELEASE = f"https://github.com/knative/serving/releases/download/{SERVING_VERSION}"
KOURIER_RELEASE = f"https://github.com/knative-extensions/net-kourier/releases/download/{KOURIER_VERSION}"
NAMESPACE = "knative-serving"
GATEWAY_NAMESPACE = "kourier-system"
GATEWAY_SERVICE = "kourier"
INGRESS_CLASS = "kourier.ingress.networking.knative.dev"

# Knative's feature flag for each pod field it gates, as named in its `config-features`.
POD_FIELD_FLAGS: dict[str, str] = {
    "affinity": "kubernetes.podspec-affinity",
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "tolerations": "kubernetes.podspec-tolerations",
    "topologySpreadConstraints": "kubernetes.podspec-topologyspreadconstraints",
    "priorityClassName": "kubernetes.podspec-priorityclassname",
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",
    "initContainers": "kubernetes.podspec-init-containers",
    # Any pod-level securityContext field (seccompProfile alone also passes with
    # `secure-pod-defaults`, which the platform leaves at its default, off).
    "securityContext": "kubernetes.podspec-securitycontext",
}
POD_FEATURES: dict[str, str] = {
    # GPU placement: the pool's node selector and the `nvidia.com/gpu` toleration.
    POD_FIELD_FLAGS["nodeSelector"]: "enabled",
    POD_FIELD_FLAGS["tolerations"]: "enabled",
    # `runAsNonRoot` at pod level, which the serving namespace's `restricted` admission requires.
    POD_FIELD_FLAGS["securityContext"]: "enabled",
}
# Since Knative 1.19 the queue-proxy's request metrics are OpenTelemetry instruments, exported only
# when `request-metrics-protocol` is set (the default `none` leaves port 9091 refusing connections).
# With `prometheus` and no `request-metrics-endpoint`, the queue-proxy serves them on its user-metrics
# port 9091, `http-usermetric` (pkg/queue/sharedmain/otel.go @ knative-v1.21.3). The revision
# reconciler copies this ConfigMap into each queue-proxy's OBSERVABILITY_CONFIG environment when it
# builds the revision's Deployment (pkg/reconciler/revision/resources/queue.go), so the patch is in
# `ready`: the InferenceServices' revisions are created after it.
REQUEST_METRICS: dict[str, str] = {"request-metrics-protocol": "prometheus"}
# Pulumi owns these keys although the ConfigMaps belong to the release manifests.
PATCH_FORCE = {"pulumi.com/patchForce": "true"}
# The upstream manifests, by role, in the order they are applied.
RELEASE_MANIFESTS: dict[str, str] = {
    "crds": f"{SERVING_RELEASE}/serving-crds.yaml",
    "core": f"{SERVING_RELEASE}/serving-core.yaml",
    "kourier": f"{KOURIER_RELEASE}/kourier.yaml",
}


def cluster_internal_gateway(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Turn the Kourier gateway's LoadBalancer Service into a ClusterIP one (see module doc)."""
    if args.type_ != "kubernetes:core/v1:Service":
        return None
    metadata = args.props.get("metadata") or {}
    if metadata.get("name") != GATEWAY_SERVICE or metadata.get("namespace") != GATEWAY_NAMESPACE:
        return None
    spec = {**(args.props.get("spec") or {}), "type": "ClusterIP"}
    return pulumi.ResourceTransformResult(props={**args.props, "spec": spec}, opts=args.opts)


@dataclass(frozen=True)
class KnativeServingArgs:
    # How long Pulumi waits for an InferenceService to become Ready.
    progress_deadline_seconds: int


class KnativeServing(pulumi.ComponentResource):
    # Everything KServe's controller and the InferenceServices wait for.
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: KnativeServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:KnativeServing", name, None, opts)
        crds = k8s.yaml.v2.ConfigFile(f"{name}-crds", file=RELEASE_MANIFESTS["crds"], opts=pulumi.ResourceOptions(parent=self))
        core = k8s.yaml.v2.ConfigFile(
            f"{name}-core", file=RELEASE_MANIFESTS["core"], opts=pulumi.ResourceOptions(parent=self, depends_on=[crds])
        )
        # Kourier's controller registers with Knative's networking CRDs and ConfigMaps.
        gateway = k8s.yaml.v2.ConfigFile(
            f"{name}-kourier",
            file=RELEASE_MANIFESTS["kourier"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[core], transforms=[cluster_internal_gateway]),
        )
        settings = [
            self._patch(name, "config-network", {"ingress-class": INGRESS_CLASS}, core),
            self._patch(name, "config-features", dict(POD_FEATURES), core),
            self._patch(name, "config-observability", dict(REQUEST_METRICS), core),
            self._patch(
                name, "config-deployment", {"progress-deadline": f"{args.progress_deadline_seconds}s", **QUEUE_PROXY_RESOURCES}, core
            ),
        ]
        # Knative's release manifests create both namespaces: their policies follow them.
        namespace_policies(f"{name}-{NAMESPACE}", NAMESPACE, KNATIVE_SERVING_FLOWS, pulumi.ResourceOptions(parent=self, depends_on=[core]))
        namespace_policies(
            f"{name}-{GATEWAY_NAMESPACE}", GATEWAY_NAMESPACE, KOURIER_SYSTEM_FLOWS, pulumi.ResourceOptions(parent=self, depends_on=[gateway])
        )
        self.ready = [crds, core, gateway, *settings]
        self.register_outputs(
            {"servingVersion": SERVING_VERSION, "kourierVersion": KOURIER_VERSION, "ingressClass": INGRESS_CLASS}
        )

    def _patch(self, name: str, config_map: str, data: dict[str, str], core: pulumi.Resource) -> k8s.core.v1.ConfigMapPatch:
        return k8s.core.v1.ConfigMapPatch(
            f"{name}-{config_map}",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=config_map, namespace=NAMESPACE, annotations=dict(PATCH_FORCE)),
            data=data,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[core]),
        )
