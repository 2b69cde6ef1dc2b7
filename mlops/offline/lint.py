"""The platform lint: what a reviewer checks by hand across the whole render, as findings naming the
object and the rule. Schemas say each object is well formed; this says they fit together.

Rules:
- references: every Secret, ConfigMap, ServiceAccount, PVC, PriorityClass and StorageClass a pod
  (or a monitor's credentials, or a claim) names exists in the render, or is in PROVIDED_OUTSIDE
  (made by a chart the render installs, or by the cluster itself), with the reason;
- services: every Service selects pods the render runs, and its target ports exist on them;
- monitors: every ServiceMonitor/PodMonitor selects a Service/pod and a port that exist, and every
  monitor and PrometheusRule is picked up by the selectors of the Prometheus the platform installs;
- promql: every rule and dashboard expression parses with promtool and names only series in the
  metric catalog (monitoring/catalog.py), Prometheus' own, or recorded by the render's rules;
- placement: a pod pinned to a node pool tolerates the pool's taints and fits one node's allocatable;
- flows: the NetworkPolicies allow each flow the platform needs (scrape, MLflow to its database and
  store, storage initializer to the store, gateways to model pods, logger to collector, drift job to
  Pushgateway and MLflow, API server webhooks, the GKE metadata server, and for a stack with routes on
  the platform gateway: outside clients to Envoy's HTTPS listener, Envoy to Kourier's cluster-local
  listener and to RawDeployment predictors) and deny model pods the database, and deny the pods of one
  model namespace (a team's, or the shared one) another's model pods;
- routes: every HTTPRoute's backends exist (in the render, or made by a chart or KServe) and Envoy
  reaches their pods under the NetworkPolicies, and every route is guarded by a SecurityPolicy (a
  model route by one with jwt or apiKeyAuth).
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.catalog import node_allocatable
from components.formats import quantity_value
from mlops.offline.cost import config_object
from mlops.offline.render import Rendering

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "InferenceService")
BUILT_IN_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})

# Objects the render names but does not declare, each made by something the render installs or by
# the cluster, with why it exists. (kind, namespace or "*", name) -> reason.
PROVIDED_OUTSIDE: dict[tuple[str, str, str], str] = {
    ("ServiceAccount", "*", "default"): "every namespace gets a `default` ServiceAccount from the API server",
    ("Service", "kserve", "kserve-controller-manager-metrics-service"):
        "the kserve chart's metrics Service (labels control-plane: kserve-controller-manager, port https)",
    ("StorageClass", "", "standard-rwo"): "GKE creates the standard-rwo StorageClass in every cluster",
    ("StorageClass", "", "gp2"): "EKS creates the gp2 StorageClass in every cluster",
}
# Ports the chart-made Services above expose, by name.
OUTSIDE_SERVICE_PORTS = {("kserve", "kserve-controller-manager-metrics-service"): ({"control-plane": "kserve-controller-manager"}, {"https"})}

# Knative's queue-proxy runs next to every InferenceService predictor (Serverless mode) and names
# these ports (knative/serving pkg/reconciler/revision/resources/queue.go, v1.21).
QUEUE_PROXY_PORTS = {"http-usermetric": 9091, "http-autometric": 9090, "http-queueadm": 8022, "queue-port": 8012}
# The model server's own port behind the queue-proxy (RawDeployment: the predictor Service's target).
MODEL_SERVER_PORT = 8080


@dataclass(frozen=True)
class Finding:
    rule: str
    obj: str
    message: str

    def __str__(self) -> str:
        return f"lint {self.rule}: {self.obj}: {self.message}"


@dataclass(frozen=True)
class Pod:
    """A pod template some workload stamps out."""

    owner: str
    namespace: str
    labels: dict[str, str]
    spec: dict[str, Any]

    def port_names(self) -> set[str]:
        return {str(p["name"]) for c in _containers(self.spec) for p in c.get("ports") or [] if p.get("name")}

    def port_numbers(self) -> set[int]:
        return {int(p["containerPort"]) for c in _containers(self.spec) for p in c.get("ports") or [] if "containerPort" in p}


def _containers(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]


def _name(manifest: Mapping[str, Any]) -> str:
    metadata = manifest.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{manifest.get('kind')} {namespace + '/' if namespace else ''}{metadata.get('name')}"


class RenderIndex:
    def __init__(self, rendering: Rendering):
        self.cloud = str(rendering.outputs.get("cloud") or rendering.config.get("mlops:cloud") or "local")
        self.manifests = [dict(r.inputs) for r in rendering.resources if r.is_manifest and isinstance(r.inputs, dict)]
        self.releases = [dict(r.inputs) for r in rendering.resources if r.type.startswith(("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"))]
        self.node_pools = [(r.type, dict(r.inputs)) for r in rendering.resources if r.type in NODE_POOL_TYPES]
        self.declared = {
            (m.get("kind"), (m.get("metadata") or {}).get("namespace") or "", (m.get("metadata") or {}).get("name"))
            for m in self.manifests
        }
        self.pods = list(self._pods())
        local_class = config_object(rendering.config, "mlops:local").get("storageClass", "standard")
        self.provided = dict(PROVIDED_OUTSIDE)
        if self.cloud == "local":
            self.provided[("StorageClass", "", local_class)] = "the local cluster's own StorageClass (mlops:local.storageClass)"

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in self.declared or any(
            (kind, ns, name) in self.provided for ns in (namespace, "*")
        )

    def of_kind(self, *kinds: str) -> Iterator[dict[str, Any]]:
        return (m for m in self.manifests if m.get("kind") in kinds)

    def _pods(self) -> Iterator[Pod]:
        for manifest in self.of_kind(*WORKLOAD_KINDS):
            metadata, spec = manifest.get("metadata") or {}, manifest.get("spec") or {}
            namespace = metadata.get("namespace") or ""
            if manifest["kind"] == "InferenceService":
                for component in ("predictor", "transformer", "explainer"):
                    part = spec.get(component)
                    if part:
                        yield _inference_pod(_name(manifest), namespace, metadata.get("name"), component, part)
                continue
            template = (spec.get("jobTemplate") or {}).get("spec", {}).get("template") if manifest["kind"] == "CronJob" else spec.get("template")
            if template:
                yield Pod(_name(manifest), namespace, dict((template.get("metadata") or {}).get("labels") or {}), dict(template.get("spec") or {}))
        for gateway in self.of_kind("Gateway"):
            metadata = gateway.get("metadata") or {}
            yield _envoy_proxy_pod(_name(gateway), metadata.get("namespace") or "", metadata.get("name"))


def _inference_pod(owner: str, namespace: str, name: str, component: str, part: Mapping[str, Any]) -> Pod:
    """KServe turns a component into a pod: its fields are the pod spec, `model` the main container,
    labelled with the isvc and component (kserve pkg/constants), plus Knative's queue-proxy."""
    spec = {k: v for k, v in part.items() if k not in ("model", "labels", "annotations", "logger")}
    queue_proxy = {"name": "queue-proxy", "ports": [{"name": n, "containerPort": p} for n, p in QUEUE_PROXY_PORTS.items()]}
    spec["containers"] = [*(part.get("containers") or []), *([part["model"]] if "model" in part else []), queue_proxy]
    labels = {**(part.get("labels") or {}), "serving.kserve.io/inferenceservice": name, "component": component}
    return Pod(owner, namespace, labels, spec)


def _envoy_proxy_pod(owner: str, namespace: str, gateway: str) -> Pod:
    """Envoy Gateway runs a Gateway's proxies in its own namespace (the controller namespace the platform
    puts the Gateway in), labelled with the app and the owning Gateway, serving Prometheus statistics
    on container port `metrics` (internal/infrastructure/kubernetes/proxy/resource.go, v1.9.0)."""
    labels = {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/managed-by": "envoy-gateway",
        "gateway.envoyproxy.io/owning-gateway-name": gateway,
        "gateway.envoyproxy.io/owning-gateway-namespace": namespace,
    }
    spec = {"containers": [{"name": "envoy", "ports": [{"name": "metrics", "containerPort": ENVOY_METRICS_PORT}]}]}
    return Pod(owner, namespace, labels, spec)


def _matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


# --- references -------------------------------------------------------------------------------


def _pod_references(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    yield "ServiceAccount", spec.get("serviceAccountName") or "default"
    if spec.get("priorityClassName"):
        yield "PriorityClass", spec["priorityClassName"]
    for secret in spec.get("imagePullSecrets") or []:
        yield "Secret", secret["name"]
    for volume in spec.get("volumes") or []:
        if "secret" in volume and not volume["secret"].get("optional"):
            yield "Secret", volume["secret"]["secretName"]
        if "configMap" in volume and not volume["configMap"].get("optional"):
            yield "ConfigMap", volume["configMap"]["name"]
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]
        for source in (volume.get("projected") or {}).get("sources") or []:
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if key in source and not source[key].get("optional"):
                    yield kind, source[key]["name"]
    for container in _containers(spec):
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if key in source and not source[key].get("optional"):
                    yield kind, source[key]["name"]
        for env_from in container.get("envFrom") or []:
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if key in env_from and not env_from[key].get("optional"):
                    yield kind, env_from[key]["name"]


def _secret_refs(value: Any) -> Iterator[str]:
    """`{name, key}` Secret selectors anywhere in a monitor endpoint (basicAuth, bearerTokenSecret, TLS)."""
    if isinstance(value, dict):
        if set(value) >= {"name", "key"} and isinstance(value["name"], str):
            yield value["name"]
        for inner in value.values():
            yield from _secret_refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _secret_refs(inner)


def check_references(index: RenderIndex) -> list[Finding]:
    findings = []
    for pod in index.pods:
        for kind, name in _pod_references(pod.spec):
            if kind == "PriorityClass" and name in BUILT_IN_PRIORITY_CLASSES:
                continue
            namespace = "" if kind == "PriorityClass" else pod.namespace
            if not index.exists(kind, namespace, name):
                findings.append(Finding("references", pod.owner, f"names {kind} {name!r}, which nothing in the render creates"))
    for monitor in index.of_kind("ServiceMonitor", "PodMonitor"):
        namespace = (monitor.get("metadata") or {}).get("namespace") or ""
        for name in set(_secret_refs((monitor.get("spec") or {}).get("endpoints") or (monitor.get("spec") or {}).get("podMetricsEndpoints"))):
            if not index.exists("Secret", namespace, name):
                findings.append(Finding("references", _name(monitor), f"scrapes with Secret {name!r}, which nothing in the render creates"))
    claims = [(m, (m.get("spec") or {}).get("storageClassName")) for m in index.of_kind("PersistentVolumeClaim")]
    claims += [
        (m, (template.get("spec") or {}).get("storageClassName"))
        for m in index.of_kind("StatefulSet")
        for template in (m.get("spec") or {}).get("volumeClaimTemplates") or []
    ]
    for manifest, storage_class in claims:
        if storage_class and not index.exists("StorageClass", "", storage_class):
            findings.append(Finding("references", _name(manifest), f"claims StorageClass {storage_class!r}, which nothing in the render creates"))
    return findings


# --- services and monitors ------------------------------------------------------------------------


def check_services(index: RenderIndex) -> list[Finding]:
    findings = []
    for service in index.of_kind("Service"):
        spec, namespace = service.get("spec") or {}, (service.get("metadata") or {}).get("namespace") or ""
        selector = spec.get("selector")
        if not selector:
            continue
        pods = [p for p in index.pods if p.namespace == namespace and _matches({"matchLabels": selector}, p.labels)]
        if not pods:
            findings.append(Finding("services", _name(service), f"selects {selector}, but no pod the render runs in {namespace} carries those labels"))
            continue
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            found = any(target in p.port_names() if isinstance(target, str) else int(target) in p.port_numbers() for p in pods)
            if not found:
                findings.append(
                    Finding("services", _name(service), f"port {port.get('name') or port.get('port')} targets {target!r}, which no selected pod ({', '.join(sorted({p.owner for p in pods}))}) exposes")
                )
    return findings


def _monitor_namespaces(monitor: Mapping[str, Any]) -> set[str] | None:
    selector = (monitor.get("spec") or {}).get("namespaceSelector") or {}
    if selector.get("any"):
        return None
    return set(selector.get("matchNames") or [(monitor.get("metadata") or {}).get("namespace") or ""])


def check_monitors(index: RenderIndex) -> list[Finding]:
    findings = []
    services = [
        ((s.get("metadata") or {}).get("namespace") or "", (s.get("metadata") or {}).get("labels") or {},
         {str(p.get("name")) for p in (s.get("spec") or {}).get("ports") or []})
        for s in index.of_kind("Service")
    ] + [(ns, labels, ports) for (ns, _), (labels, ports) in OUTSIDE_SERVICE_PORTS.items()]
    for monitor in index.of_kind("ServiceMonitor"):
        spec, namespaces = monitor.get("spec") or {}, _monitor_namespaces(monitor)
        selected = [s for s in services if (namespaces is None or s[0] in namespaces) and _matches(spec.get("selector"), s[1])]
        if not selected:
            findings.append(Finding("monitors", _name(monitor), f"selects {spec.get('selector')} in {sorted(namespaces or ['any'])}, which matches no Service"))
            continue
        for endpoint in spec.get("endpoints") or []:
            if endpoint.get("port") and not any(endpoint["port"] in ports for _, _, ports in selected):
                findings.append(Finding("monitors", _name(monitor), f"scrapes port {endpoint['port']!r}, which the selected Service(s) do not name"))
    for monitor in index.of_kind("PodMonitor"):
        spec, namespaces = monitor.get("spec") or {}, _monitor_namespaces(monitor)
        pods = [p for p in index.pods if (namespaces is None or p.namespace in namespaces) and _matches(spec.get("selector"), p.labels)]
        if not pods:
            findings.append(Finding("monitors", _name(monitor), f"selects {spec.get('selector')}, which matches no pod the render runs"))
            continue
        for endpoint in spec.get("podMetricsEndpoints") or []:
            if endpoint.get("port") and not any(endpoint["port"] in p.port_names() for p in pods):
                findings.append(Finding("monitors", _name(monitor), f"scrapes port {endpoint['port']!r}, which no selected pod names"))
    findings += _picked_up_by_prometheus(index)
    return findings


def _picked_up_by_prometheus(index: RenderIndex) -> list[Finding]:
    """kube-prometheus-stack (values.yaml): with `<kind>SelectorNilUsesHelmValues` true (its default) and
    no `<kind>Selector`, Prometheus only takes objects labelled `release: <release name>`; namespace
    selectors default to {} (every namespace)."""
    stacks = [r for r in index.releases if r.get("chart") == "kube-prometheus-stack"]
    if not stacks:
        return []
    release = stacks[0]
    prometheus = ((release.get("values") or {}).get("prometheus") or {}).get("prometheusSpec") or {}
    namespaces = {(m.get("metadata") or {}).get("name"): (m.get("metadata") or {}).get("labels") or {} for m in index.of_kind("Namespace")}
    findings = []
    for kind, prefix in (("ServiceMonitor", "serviceMonitor"), ("PodMonitor", "podMonitor"), ("PrometheusRule", "rule")):
        selector = prometheus.get(f"{prefix}Selector")
        if selector is None and prometheus.get(f"{prefix}SelectorNilUsesHelmValues", True):
            selector = {"matchLabels": {"release": release.get("name") or "kube-prometheus-stack"}}
        namespace_selector = prometheus.get(f"{prefix}NamespaceSelector") or {}
        for obj in index.of_kind(kind):
            metadata = obj.get("metadata") or {}
            namespace_labels = {"kubernetes.io/metadata.name": metadata.get("namespace"), **namespaces.get(metadata.get("namespace"), {})}
            if not _matches(selector, metadata.get("labels") or {}) or not _matches(namespace_selector, namespace_labels):
                findings.append(
                    Finding("monitors", _name(obj), f"is not picked up by Prometheus ({prefix}Selector {selector}, {prefix}NamespaceSelector {namespace_selector})")
                )
    return findings


# --- PromQL -----------------------------------------------------------------------------------------

_GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)|\$\{__(rate_interval|interval|range)\}")
_GRAFANA_VARIABLES = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


def promql_expressions(index: RenderIndex) -> list[tuple[str, str]]:
    """(object, expression) for every rule and every Grafana dashboard target the render ships."""
    found = []
    for rule in index.of_kind("PrometheusRule"):
        for group in (rule.get("spec") or {}).get("groups") or []:
            for entry in group.get("rules") or []:
                found.append((f"{_name(rule)} {entry.get('alert') or entry.get('record')}", str(entry.get("expr"))))
    for config_map in index.of_kind("ConfigMap"):
        for key, text in ((config_map.get("data") or {}).items()):
            if not key.endswith(".json"):
                continue
            try:
                dashboard = json.loads(text)
            except json.JSONDecodeError:
                continue
            for panel in _panels(dashboard):
                for target in panel.get("targets") or []:
                    if target.get("expr"):
                        # Grafana fills these in before Prometheus sees the query.
                        expr = _GRAFANA_VARIABLES.sub(".*", _GRAFANA_RANGES.sub("5m", target["expr"]))
                        found.append((f"{_name(config_map)} {key} panel {panel.get('title')!r}", expr))
    return found


def _panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels") or []:
        yield panel
        yield from _panels(panel)


# Series Prometheus makes itself (prometheus/prometheus rules/alerting.go, scrape/scrape.go).
PROMETHEUS_SERIES = frozenset({"ALERTS", "ALERTS_FOR_STATE", "up", "scrape_duration_seconds", "scrape_samples_scraped"})
_PROMQL_WORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset", "group_left", "group_right", "inf", "nan"})


def metric_catalog() -> frozenset[str]:
    """Every series the platform's components export: the `*_SERIES` sets of monitoring.catalog."""
    from monitoring import catalog

    return frozenset().union(*(names for attribute, names in vars(catalog).items() if attribute.endswith("_SERIES")))


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords,
    label names (matchers, by/without/on/ignoring/group_* lists), strings or durations."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![0-9.A-Za-z_:])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if match.group(0).lower() not in _PROMQL_WORDS and not text[match.end():].lstrip().startswith("("):
            names.add(match.group(0))
    return names


def check_metric_names(index: RenderIndex) -> list[Finding]:
    recorded = {
        str(entry["record"])
        for rule in index.of_kind("PrometheusRule")
        for group in (rule.get("spec") or {}).get("groups") or []
        for entry in group.get("rules") or []
        if entry.get("record")
    }
    known = metric_catalog() | PROMETHEUS_SERIES | recorded
    return [
        Finding("promql", owner, f"names {sorted(unknown)}, which no platform component exports (monitoring/catalog.py)")
        for owner, expr in promql_expressions(index)
        if (unknown := metric_names(expr) - known)
    ]


def check_promql(index: RenderIndex, promtool: str | None = None) -> list[Finding]:
    promtool = promtool or shutil.which("promtool")
    expressions = promql_expressions(index)
    if promtool is None or not expressions:
        return []
    findings = []
    with tempfile.TemporaryDirectory(prefix="mlops-lint-") as workdir:
        # One group per expression, so promtool's "group N" names the expression that fails.
        groups = [{"name": f"e{number}", "rules": [{"record": "lint:expression", "expr": expr}]} for number, (_, expr) in enumerate(expressions)]
        path = Path(workdir) / "expressions.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}))
        completed = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
        if completed.returncode == 0:
            return []
        for line in (completed.stdout + completed.stderr).splitlines():
            failing = re.search(r'group "e([0-9]+)".*?: (.*)$', line)
            if failing:
                owner, expr = expressions[int(failing.group(1))]
                findings.append(Finding("promql", owner, f"promtool refuses {expr!r}: {failing.group(2)}"))
        if not findings:
            findings.append(Finding("promql", "rules", f"promtool check rules failed: {(completed.stdout + completed.stderr).strip()[:300]}"))
    return findings


# --- placement ---------------------------------------------------------------------------------------

NODE_POOL_TYPES = ("aws:eks/nodeGroup:NodeGroup", "gcp:container/nodePool:NodePool")
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def _pool_nodes(index: RenderIndex) -> list[tuple[str, dict[str, str], list[dict[str, str]], str]]:
    """(pool, node labels, taints, machine type) for each node pool the render declares."""
    pools = []
    for kind, inputs in index.node_pools:
        if kind.startswith("aws:"):
            labels, taints, machine = dict(inputs.get("labels") or {}), list(inputs.get("taints") or []), (inputs.get("instanceTypes") or [""])[0]
        else:
            config = inputs.get("nodeConfig") or {}
            labels, taints, machine = dict(config.get("labels") or {}), list(config.get("taints") or []), str(config.get("machineType"))
            labels["cloud.google.com/gke-nodepool"] = str(inputs.get("name"))
            if config.get("guestAccelerators"):
                # GKE taints GPU nodes itself (FACTS: GPU node pools).
                taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"})
        pools.append((str(inputs.get("name") or labels.get("mlops.platform/pool")), labels, taints, machine))
    return pools


def _tolerates(tolerations: list[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    effect = _EFFECTS.get(str(taint.get("effect")), taint.get("effect"))
    for toleration in tolerations:
        if toleration.get("effect") not in (None, "", effect):
            continue
        if toleration.get("operator") == "Exists" and toleration.get("key") in (None, "", taint.get("key")):
            return True
        if toleration.get("key") == taint.get("key") and toleration.get("value") == taint.get("value"):
            return True
    return False


def check_placement(index: RenderIndex) -> list[Finding]:
    findings = []
    pools = _pool_nodes(index)
    if not pools:
        return []
    for pod in index.pods:
        selector = pod.spec.get("nodeSelector") or {}
        if not selector:
            continue
        matching = [pool for pool in pools if all(pool[1].get(k) == v for k, v in selector.items())]
        if not matching:
            findings.append(Finding("placement", pod.owner, f"nodeSelector {selector} matches no node pool's labels"))
            continue
        for name, _, taints, machine in matching:
            untolerated = [t for t in taints if _EFFECTS.get(str(t.get("effect")), t.get("effect")) != "PreferNoSchedule" and not _tolerates(pod.spec.get("tolerations") or [], t)]
            if untolerated:
                taints_text = ", ".join(f"{t.get('key')}={t.get('value')}:{_EFFECTS.get(str(t.get('effect')), t.get('effect'))}" for t in untolerated)
                findings.append(Finding("placement", pod.owner, f"is pinned to pool {name!r} but does not tolerate its taint(s) {taints_text}"))
            if machine:
                findings += _fit(pod, name, machine, index.cloud)
    return findings


def _fit(pod: Pod, pool: str, machine: str, cloud: str) -> list[Finding]:
    node = node_allocatable(cloud, machine)
    requests = [c.get("resources", {}).get("requests") or {} for c in pod.spec.get("containers") or []]
    cpu = sum(quantity_value(str(r["cpu"])) for r in requests if "cpu" in r) * 1000
    memory = sum(quantity_value(str(r["memory"])) for r in requests if "memory" in r) / 2**20
    findings = []
    if cpu > node.millicpu:
        findings.append(Finding("placement", pod.owner, f"requests {cpu:.0f}m CPU; a node of pool {pool!r} ({machine}) has {node.millicpu}m allocatable"))
    if memory > node.memory_mib:
        findings.append(Finding("placement", pod.owner, f"requests {memory:.0f}Mi memory; a node of pool {pool!r} ({machine}) has {node.memory_mib}Mi allocatable"))
    return findings


# --- flows ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One end of a flow: pods (namespace and labels) or an address outside the cluster."""

    name: str
    namespace: str | None = None
    labels: Mapping[str, str] | None = None
    address: str | None = None


# Pods the charts run (labels as each chart sets them at the pinned versions) and addresses outside.
PROMETHEUS = Endpoint("Prometheus", "mlops-monitoring", {"app.kubernetes.io/name": "prometheus"})
PUSHGATEWAY = Endpoint("Pushgateway", "mlops-monitoring", {"app.kubernetes.io/name": "prometheus-pushgateway"})
KOURIER = Endpoint("Kourier gateway", "kourier-system", {"app": "3scale-kourier-gateway"})
ACTIVATOR = Endpoint("Knative activator", "knative-serving", {"app": "activator"})
API_SERVER = Endpoint("the API server (webhook calls)", address="172.16.0.2")
KSERVE_WEBHOOK = Endpoint("KServe webhook", "kserve", {"control-plane": "kserve-controller-manager"})
CLOUD_APIS = Endpoint("cloud APIs (object store, STS)", address="203.0.113.10")
MANAGED_DATABASE = Endpoint("the managed database", address="10.60.0.5")
GKE_METADATA = Endpoint("the GKE metadata server", address="169.254.169.254")
# The platform gateway's Envoy pods as Envoy Gateway labels them (internal/infrastructure/kubernetes/
# proxy/resource.go EnvoyAppLabel, internal/gatewayapi/translator.go owning-gateway labels, v1.9.0).
ENVOY = Endpoint(
    "platform gateway (Envoy)",
    "envoy-gateway-system",
    {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/managed-by": "envoy-gateway",
        "gateway.envoyproxy.io/owning-gateway-name": "mlops",
        "gateway.envoyproxy.io/owning-gateway-namespace": "envoy-gateway-system",
    },
)
EXTERNAL_CLIENT = Endpoint("a client outside the cluster", address="198.51.100.7")
# Envoy's statistics port (internal/xds/bootstrap EnvoyStatsPort, v1.9.0).
ENVOY_METRICS_PORT = 19001
# Envoy binds a privileged listener port + 10000 (internal/gatewayapi/listener.go, v1.9.0): 443 -> 10443.
ENVOY_HTTPS_PORT = 10443
GRAFANA = Endpoint("Grafana", "mlops-monitoring", {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"})
# Route backends a chart or KServe makes: (namespace, Service, port) -> (pods, target port).
# kourier-internal: port 80 -> 8081 (net-kourier config/300-gateway.yaml, knative-v1.21.1); Grafana:
# `<release>-grafana`, port 80 -> 3000 (grafana chart defaults).
OUTSIDE_ROUTE_BACKENDS: dict[tuple[str, str, int], tuple[Endpoint, int]] = {
    ("kourier-system", "kourier-internal", 80): (KOURIER, 8081),
    ("mlops-monitoring", "kube-prometheus-stack-grafana", 80): (GRAFANA, 3000),
}
# A RawDeployment predictor Service `<isvc>-...-predictor` serves port 80 from MODEL_SERVER_PORT
# (kserve pkg/constants InferenceServiceDefaultHttpPort; reconcilers/service, v0.20.0).
PREDICTOR_SERVICE_PORT = 80
MODEL_LABEL = "mlops.platform/model"


def _render_pods(index: RenderIndex, label: str, value: str) -> Endpoint:
    pods = [p for p in index.pods if p.labels.get(label) == value]
    if not pods:
        return Endpoint(f"pods {label}={value} (none rendered)")
    return Endpoint(pods[0].owner, pods[0].namespace, pods[0].labels)


def required_flows(index: RenderIndex) -> list[tuple[str, Endpoint, Endpoint, int, bool]]:
    """(purpose, from, to, port, must be allowed) for the platform's flows and one nobody needs."""
    mlflow = _render_pods(index, "app.kubernetes.io/name", "mlflow")
    collector = _render_pods(index, "app.kubernetes.io/name", "payload-collector")
    models = [Endpoint(p.owner, p.namespace, p.labels) for p in index.pods if "serving.kserve.io/inferenceservice" in p.labels]
    drift_jobs = [Endpoint(p.owner, p.namespace, p.labels) for p in index.pods if p.labels.get("app.kubernetes.io/component") == "drift-job"]
    local = index.cloud == "local"
    database = _render_pods(index, "app.kubernetes.io/name", "postgres") if local else MANAGED_DATABASE
    store, store_port = (_render_pods(index, "app.kubernetes.io/name", "object-store"), 9000) if local else (CLOUD_APIS, 443)
    flows = [
        ("scrape", PROMETHEUS, mlflow, 5000, True),
        ("scrape", PROMETHEUS, collector, 8080, True),
        ("MLflow -> database", mlflow, database, 5432, True),
        ("MLflow -> artifact store", mlflow, store, store_port, True),
        ("webhook", API_SERVER, KSERVE_WEBHOOK, 9443, True),
    ]
    for model in models:
        flows += [
            ("scrape (queue-proxy metrics)", PROMETHEUS, model, QUEUE_PROXY_PORTS["http-usermetric"], True),
            ("ingress -> model", KOURIER, model, QUEUE_PROXY_PORTS["queue-port"], True),
            ("activator -> model", ACTIVATOR, model, QUEUE_PROXY_PORTS["queue-port"], True),
            ("storage initializer -> store", model, store, store_port, True),
            ("inference logger -> collector", model, collector, 8080, True),
            ("model -> database", model, database, 5432, False),
        ]
        if index.cloud == "gcp":
            flows.append(("workload identity -> metadata server", model, GKE_METADATA, 80, True))
    for job in drift_jobs:
        flows += [("drift job -> Pushgateway", job, PUSHGATEWAY, 9091, True), ("drift job -> MLflow", job, mlflow, 5000, True)]
    # Teams are kept apart: nothing in one model namespace reaches another's model pods, on the
    # queue-proxy or on the model server itself.
    flows += [
        (f"{source.namespace} -> {target.namespace} (another team's model)", source, target, port, False)
        for source in [*models, *drift_jobs]
        for target in models
        if source.namespace != target.namespace
        for port in (QUEUE_PROXY_PORTS["queue-port"], MODEL_SERVER_PORT)
    ]
    routes = list(index.of_kind("HTTPRoute"))
    if routes:
        flows.append(("external -> gateway", EXTERNAL_CLIENT, ENVOY, ENVOY_HTTPS_PORT, True))
    for route in routes:
        for backend in route_backends(index, route):
            if backend.pods is not None and backend.port is not None:
                flows.append((f"gateway -> {backend.name} ({_name(route)})", ENVOY, backend.pods, backend.port, True))
    return flows


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Endpoint, namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    if "ipBlock" in peer:
        # Pod IPs are the CNI's business; an ipBlock is taken to mean addresses outside the cluster.
        block = peer["ipBlock"]
        if other.address is None:
            return False
        address = ipaddress.ip_address(other.address)
        return address in ipaddress.ip_network(block["cidr"]) and not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        labels = {"kubernetes.io/metadata.name": other.namespace, **namespaces.get(other.namespace, {})}
        if not _matches(peer["namespaceSelector"], labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or _matches(peer["podSelector"], other.labels or {})


def _port_matches(rule: Mapping[str, Any], port: int) -> bool:
    ports = rule.get("ports") or []
    return not ports or any(p.get("port") in (None, port) or (p.get("endPort") and p["port"] <= port <= p["endPort"]) for p in ports)


def _side_allows(index: RenderIndex, direction: str, subject: Endpoint, other: Endpoint, port: int) -> bool:
    """Whether the policies selecting `subject` let this flow through on the `direction` side."""
    if subject.namespace is None:
        return True  # outside the cluster: no NetworkPolicy applies
    kind = "Ingress" if direction == "ingress" else "Egress"
    peers_key = "from" if direction == "ingress" else "to"
    namespaces = {(m.get("metadata") or {}).get("name"): (m.get("metadata") or {}).get("labels") or {} for m in index.of_kind("Namespace")}
    selecting = []
    for policy in index.of_kind("NetworkPolicy"):
        metadata, spec = policy.get("metadata") or {}, policy.get("spec") or {}
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])
        if metadata.get("namespace") == subject.namespace and kind in types and _matches(spec.get("podSelector"), subject.labels or {}):
            selecting.append(policy)
    if not selecting:
        return True
    return any(
        _port_matches(rule, port)
        and (not rule.get(peers_key) or any(_peer_matches(peer, policy["metadata"]["namespace"], other, namespaces) for peer in rule[peers_key]))
        for policy in selecting
        for rule in (policy.get("spec") or {}).get(direction) or []
    )


def flow_allowed(index: RenderIndex, source: Endpoint, destination: Endpoint, port: int) -> bool:
    return _side_allows(index, "egress", source, destination, port) and _side_allows(index, "ingress", destination, source, port)


def check_flows(index: RenderIndex) -> list[Finding]:
    findings = []
    for purpose, source, destination, port, required in required_flows(index):
        if source.labels is None and source.address is None or destination.labels is None and destination.address is None:
            continue  # an end the render does not run (e.g. no model): nothing to check
        allowed = flow_allowed(index, source, destination, port)
        if allowed != required:
            verdict = "is denied by the NetworkPolicies" if required else "is allowed, though nothing needs it"
            findings.append(Finding("flows", f"{source.name} -> {destination.name}:{port}", f"{purpose} {verdict}"))
    return findings


# --- routes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteBackend:
    """A route's backendRef resolved to the pods and container port it reaches (None: unresolved)."""

    name: str
    pods: Endpoint | None
    port: int | None


def route_backends(index: RenderIndex, route: Mapping[str, Any]) -> list[RouteBackend]:
    namespace = (route.get("metadata") or {}).get("namespace") or ""
    backends = []
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            backend_namespace, name, port = ref.get("namespace") or namespace, str(ref.get("name")), int(ref.get("port") or 0)
            backends.append(_resolve_backend(index, backend_namespace, name, port))
    return backends


def _resolve_backend(index: RenderIndex, namespace: str, name: str, port: int) -> RouteBackend:
    label = f"Service {namespace}/{name}:{port}"
    if (namespace, name, port) in OUTSIDE_ROUTE_BACKENDS:
        pods, target = OUTSIDE_ROUTE_BACKENDS[(namespace, name, port)]
        return RouteBackend(label, pods, target)
    for service in index.of_kind("Service"):
        metadata, spec = service.get("metadata") or {}, service.get("spec") or {}
        if (metadata.get("namespace"), metadata.get("name")) != (namespace, name):
            continue
        pods = [p for p in index.pods if p.namespace == namespace and spec.get("selector") and _matches({"matchLabels": spec["selector"]}, p.labels)]
        for service_port in spec.get("ports") or []:
            if service_port.get("port") == port and pods:
                target = service_port.get("targetPort", port)
                number = target if isinstance(target, int) else next(
                    (int(p["containerPort"]) for c in _containers(pods[0].spec) for p in c.get("ports") or [] if p.get("name") == target), None
                )
                return RouteBackend(label, Endpoint(pods[0].owner, namespace, pods[0].labels), number)
        return RouteBackend(label, None, None)
    if name.endswith("-predictor") and port == PREDICTOR_SERVICE_PORT:
        for pod in index.pods:
            isvc = pod.labels.get("serving.kserve.io/inferenceservice")
            if pod.namespace == namespace and isvc and name.startswith(f"{isvc}-") and pod.labels.get("component") == "predictor":
                return RouteBackend(label, Endpoint(pod.owner, namespace, pod.labels), MODEL_SERVER_PORT)
    return RouteBackend(label, None, None)


def _guarding_policies(index: RenderIndex, route: Mapping[str, Any]) -> list[dict[str, Any]]:
    metadata = route.get("metadata") or {}
    return [
        spec
        for policy in index.of_kind("SecurityPolicy")
        if (policy.get("metadata") or {}).get("namespace") == metadata.get("namespace")
        for spec in [policy.get("spec") or {}]
        if any(t.get("kind") == "HTTPRoute" and t.get("name") == metadata.get("name") for t in spec.get("targetRefs") or [])
    ]


def check_routes(index: RenderIndex) -> list[Finding]:
    findings = []
    for route in index.of_kind("HTTPRoute"):
        backends = route_backends(index, route)
        for backend in backends:
            if backend.pods is None:
                findings.append(Finding("routes", _name(route), f"sends traffic to {backend.name}, which matches no Service and port the render, its charts or KServe make"))
            elif backend.port is not None and not flow_allowed(index, ENVOY, backend.pods, backend.port):
                findings.append(Finding("routes", _name(route), f"{backend.name} ({backend.pods.name}:{backend.port}) is unreachable from the gateway under the NetworkPolicies"))
        labels = (route.get("metadata") or {}).get("labels") or {}
        serves_model = MODEL_LABEL in labels or any(b.pods is KOURIER or b.name.split(":")[0].endswith("-predictor") for b in backends)
        guards = _guarding_policies(index, route)
        if serves_model and not any(spec.get("jwt") or spec.get("apiKeyAuth") for spec in guards):
            findings.append(Finding("routes", _name(route), "serves a model without a SecurityPolicy authenticating callers (jwt or apiKeyAuth)"))
        elif backends and not guards:
            # A route without backends (the HTTP-to-HTTPS redirect) answers from Envoy itself.
            findings.append(Finding("routes", _name(route), "is on the gateway without a SecurityPolicy"))
    return findings


# --- all together -------------------------------------------------------------------------------------


RULES = ("references", "services", "monitors", "promql", "placement", "flows", "routes")


def lint_rendering(rendering: Rendering, promtool: str | None = None) -> list[Finding]:
    index = RenderIndex(rendering)
    return [
        *check_references(index),
        *check_services(index),
        *check_monitors(index),
        *check_promql(index, promtool),
        *check_metric_names(index),
        *check_placement(index),
        *check_flows(index),
        *check_routes(index),
    ]

