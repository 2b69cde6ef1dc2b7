"""Where pods and containers sit inside the Kubernetes objects the platform declares.

Workload inputs are camelCase as Pulumi sends them (`spec.template.spec.containers`). An
InferenceService's predictor (and transformer/explainer) is a pod spec whose `model` is one more
container, so the container rules judge model servers like any other workload.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
CRON_JOB = "kubernetes:batch/v1:CronJob"
SECRET = "kubernetes:core/v1:Secret"
GPU_RESOURCE = "nvidia.com/gpu"
MODEL_LABEL = "mlops.platform/model"
MODEL_VERSION_LABEL = "mlops.platform/model-version"

_TEMPLATE = ("spec", "template", "spec")
POD_SPEC_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "kubernetes:core/v1:Pod": (("spec",),),
    "kubernetes:apps/v1:Deployment": (_TEMPLATE,),
    "kubernetes:apps/v1:StatefulSet": (_TEMPLATE,),
    "kubernetes:apps/v1:DaemonSet": (_TEMPLATE,),
    "kubernetes:apps/v1:ReplicaSet": (_TEMPLATE,),
    "kubernetes:batch/v1:Job": (_TEMPLATE,),
    CRON_JOB: (("spec", "jobTemplate", "spec", "template", "spec"),),
    INFERENCE_SERVICE: (("spec", "predictor"), ("spec", "transformer"), ("spec", "explainer")),
    # The model server containers of every predictor that names the runtime.
    "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime": (("spec",),),
    "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime": (("spec",),),
}


@dataclass(frozen=True)
class ContainerRef:
    """One container and the pod spec around it (for pod-level defaults such as securityContext)."""

    name: str
    container: Mapping[str, Any]
    pod: Mapping[str, Any]

    @property
    def security(self) -> Mapping[str, Any]:
        return self.container.get("securityContext") or {}

    @property
    def pod_security(self) -> Mapping[str, Any]:
        return self.pod.get("securityContext") or {}


def dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def pod_specs(resource_type: str, props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    specs = (dig(props, *path) for path in POD_SPEC_PATHS.get(resource_type, ()))
    return [spec for spec in specs if isinstance(spec, Mapping)]


def containers(resource_type: str, props: Mapping[str, Any]) -> Iterator[ContainerRef]:
    for pod in pod_specs(resource_type, props):
        yield from pod_containers(pod)


def pod_containers(pod: Mapping[str, Any]) -> Iterator[ContainerRef]:
    for key in ("initContainers", "containers"):
        for container in pod.get(key) or []:
            yield ContainerRef(str(container.get("name", key)), container, pod)
    model = pod.get("model")
    if isinstance(model, Mapping):
        yield ContainerRef(str(model.get("name", "kserve-container")), model, pod)


# Images the platform declares outside a pod spec: the proxy container of Envoy Gateway's EnvoyProxy
# (api/v1alpha1 KubernetesContainerSpec.image at v1.9.0), and the values of the charts it installs.
ENVOY_PROXY = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
_ENVOY_PROXY_IMAGE = ("spec", "provider", "kubernetes", "envoyDeployment", "container", "image")
HELM_CHARTS = ("kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release")


def declared_images(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where in the object, image) for every image the object names: its pod specs' containers, an
    EnvoyProxy's proxy, and a chart's `image` values (a full reference, or `repository` with `tag`)."""
    for ref in containers(resource_type, props):
        if isinstance(image := ref.container.get("image"), str) and image:
            yield f"container {ref.name}", image
    if resource_type == ENVOY_PROXY and isinstance(image := dig(props, *_ENVOY_PROXY_IMAGE), str):
        yield "proxy container", image
    if resource_type in HELM_CHARTS:
        yield from _chart_images(props.get("values"), "values")


def _chart_images(values: Any, path: str) -> Iterator[tuple[str, str]]:
    if not isinstance(values, Mapping):
        return
    for key, value in values.items():
        where = f"{path}.{key}"
        if key == "image" and isinstance(value, str):
            yield f"value {where}", value
        elif key == "image" and isinstance(value, Mapping) and isinstance(value.get("repository"), str) and value.get("tag"):
            registry = f"{value['registry']}/" if value.get("registry") else ""
            yield f"value {where}", f"{registry}{value['repository']}:{value['tag']}"
        else:
            yield from _chart_images(value, where)


def describe(resource_type: str, props: Mapping[str, Any], fallback: str) -> str:
    """`Kind namespace/name` of a Kubernetes object, or the resource type and Pulumi name."""
    metadata = props.get("metadata") or {}
    if not resource_type.startswith("kubernetes:"):
        return f"{resource_type.rsplit(':', 1)[-1]} {fallback}"
    kind = resource_type.rsplit(":", 1)[-1]
    name = metadata.get("name") or fallback
    namespace = metadata.get("namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def gpu_request(container: Mapping[str, Any]) -> int:
    """GPUs a container asks for (limits win; Kubernetes requires requests == limits for GPUs)."""
    resources = container.get("resources") or {}
    for section in ("limits", "requests"):
        value = (resources.get(section) or {}).get(GPU_RESOURCE)
        if value is not None:
            return int(str(value))
    return 0


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions); empty matches all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if operator == "In" and (not present or labels[key] not in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def tolerates(pod: Mapping[str, Any], taint_key: str, effect: str = "NoSchedule") -> bool:
    for toleration in pod.get("tolerations") or []:
        key_matches = toleration.get("key") == taint_key or (
            toleration.get("key") in (None, "") and toleration.get("operator") == "Exists"
        )
        effect_matches = toleration.get("effect") in (None, "", effect)
        if key_matches and effect_matches:
            return True
    return False
