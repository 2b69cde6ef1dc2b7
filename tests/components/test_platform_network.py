"""NetworkPolicies open exactly the flows the platform needs, on top of default-deny."""

from __future__ import annotations

import pytest

from mlops.offline.render import Rendering, render
from tests.conftest import PROJECT_DIR
from tests.exposure import EXPOSED, LOCAL_TLS

POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def policies(rendering: Rendering) -> dict[tuple[str, str], dict]:
    return {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs["spec"] for r in rendering.by_type(POLICY)}


def ports(rule: dict) -> set[int]:
    return {p["port"] for p in rule["ports"]}


def peers(rule: dict, key: str) -> list[str]:
    """Each peer as a readable tag: ns=<namespace>, pods=<app>, same-namespace, any-namespace or a CIDR."""
    tags = []
    for peer in rule[key]:
        if "ipBlock" in peer:
            tags.append(peer["ipBlock"]["cidr"])
        elif "namespaceSelector" in peer:
            labels = peer["namespaceSelector"].get("matchLabels")
            tags.append(f"ns={labels['kubernetes.io/metadata.name']}" if labels else "any-namespace")
        else:
            labels = peer["podSelector"].get("matchLabels")
            tags.append(f"pods={labels['app.kubernetes.io/name']}" if labels else "same-namespace")
    return sorted(tags)


PLATFORM_NAMESPACES = ("cert-manager", "knative-serving", "kourier-system", "kserve", "mlops-monitoring", "mlops-platform", "mlops-serving")


def test_every_platform_namespace_is_default_deny(dev, prod):
    """Old renders left monitoring, kserve, cert-manager, knative-serving and kourier-system open."""
    assert {ns for ns, name in policies(dev) if name == "default-deny"} == set(PLATFORM_NAMESPACES)
    # Prod's gateway brings Envoy Gateway's namespace, default-deny like the rest.
    assert {ns for ns, name in policies(prod) if name == "default-deny"} == {*PLATFORM_NAMESPACES, "envoy-gateway-system"}


def test_exactly_these_policies_exist(dev):
    """Nothing opened that is not listed here, on top of default-deny in every platform namespace."""
    flows = {
        "cert-manager": ["admission-webhook", "api-server", "prometheus", "same-namespace"],
        "knative-serving": [
            "admission-webhook", "api-server", "gateway-probes", "gateway-to-activator-and-xds", "model-pods", "prometheus", "same-namespace"
        ],
        "kourier-system": ["activator-and-xds", "gateway-clients", "model-pods", "prometheus", "same-namespace"],
        "kserve": ["admission-webhook", "api-server", "prometheus", "same-namespace"],
        "mlops-monitoring": ["admission-webhook", "platform-gateway", "pushgateway-clients", "same-namespace", "scrape-targets"],
        "mlops-platform": [
            "cloud-apis", "managed-database", "mlflow-clients", "object-store-clients", "payload-collector-clients", "postgres-clients"
        ],
        "mlops-serving": [
            "cloud-apis", "knative-serving", "kourier-gateway", "platform-services", "prometheus", "pushgateway"
        ],
    }
    expected = sorted([(ns, f"allow-{flow}") for ns, names in flows.items() for flow in names] + [(ns, "default-deny") for ns in flows])
    assert sorted(policies(dev)) == expected


def _admits(rendering: Rendering, direction: str, namespace: str, peer_namespace: str, port: int) -> bool:
    """Whether some policy of `namespace` lets `direction` traffic to/from `peer_namespace` on `port`."""
    key = "from" if direction == "ingress" else "to"
    for (ns, _), spec in policies(rendering).items():
        if ns != namespace:
            continue
        for rule in spec.get(direction, []):
            port_ok = "ports" not in rule or port in ports(rule)
            peers_ok = any(
                "ipBlock" in peer
                or ("namespaceSelector" in peer and peer["namespaceSelector"].get("matchLabels", {}).get("kubernetes.io/metadata.name", peer_namespace) == peer_namespace)
                for peer in rule.get(key, [])
            )
            if port_ok and peers_ok:
                return True
    return False


def test_every_cross_namespace_flow_is_open_on_both_ends(dev):
    """An egress to another platform namespace is useless unless that namespace admits it, and vice versa.
    (A namespace the render does not make default-deny, such as Envoy Gateway's while the gateway is off,
    admits everything.)"""
    default_deny = {ns for ns, name in policies(dev) if name == "default-deny"}
    missing = []
    for (namespace, name), spec in policies(dev).items():
        for direction, key, other in (("egress", "to", "ingress"), ("ingress", "from", "egress")):
            for rule in spec.get(direction, []):
                for peer in rule.get(key, []):
                    target = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                    if target is None or target == namespace or target not in default_deny:
                        continue
                    for port in ports(rule) if "ports" in rule else ():
                        if not _admits(dev, other, target, namespace, port):
                            missing.append((namespace, name, direction, target, port))
    assert missing == []


@pytest.mark.parametrize(
    ("namespace", "name", "direction", "expected_peers", "expected_ports"),
    [
        ("mlops-platform", "allow-mlflow-clients", "ingress", ["ns=mlops-monitoring", "ns=mlops-serving", "same-namespace"], {5000}),
        ("mlops-platform", "allow-payload-collector-clients", "ingress", ["ns=mlops-monitoring", "ns=mlops-serving"], {8080}),
        ("mlops-platform", "allow-managed-database", "egress", ["0.0.0.0/0"], {5432}),
        ("mlops-platform", "allow-cloud-apis", "egress", ["0.0.0.0/0"], {443}),
        ("mlops-serving", "allow-cloud-apis", "egress", ["0.0.0.0/0"], {443}),
        ("mlops-serving", "allow-platform-services", "egress", ["ns=mlops-platform"], {5000, 8080, 9000}),
        ("mlops-serving", "allow-pushgateway", "egress", ["ns=mlops-monitoring"], {9091}),
        ("mlops-serving", "allow-knative-serving", "ingress", ["ns=knative-serving"], {8012, 8013, 9090}),
        ("mlops-serving", "allow-kourier-gateway", "ingress", ["ns=kourier-system"], {8012, 8013}),
        ("mlops-serving", "allow-prometheus", "ingress", ["ns=mlops-monitoring"], {8080, 8082, 9091}),
    ],
)
def test_each_flow_opens_one_peer_set_on_its_ports(dev, namespace, name, direction, expected_peers, expected_ports):
    spec = policies(dev)[(namespace, name)]
    assert spec["policyTypes"] == [direction.capitalize()]
    (rule,) = spec[direction]
    assert peers(rule, "from" if direction == "ingress" else "to") == expected_peers
    assert ports(rule) == expected_ports


def test_mlflow_is_reachable_from_the_gateway_only_with_a_host():
    """With a host on the platform gateway, Envoy's namespace reaches MLflow (and no other namespace more)."""
    exposed = {key: value for key, value in EXPOSED.items() if key.startswith("mlops:gateway") or key == "mlops:mlflow.hostname"}
    exposed |= {**LOCAL_TLS, "mlops:gateway.loadBalancer": "internal"}
    spec = policies(render(PROJECT_DIR, "dev", exposed))[("mlops-platform", "allow-mlflow-clients")]
    assert peers(spec["ingress"][0], "from") == ["ns=envoy-gateway-system", "ns=mlops-monitoring", "ns=mlops-serving", "same-namespace"]


def scraped_ports(endpoint: dict) -> set[int]:
    """The port Prometheus connects to for one PodMonitor endpoint: the rewritten address's port, or
    the discovered port (the queue-proxy's named metrics port is 9091)."""
    rewrites = [r for r in endpoint["relabelings"] if r["targetLabel"] == "__address__"]
    if rewrites:
        return {int(rewrites[0]["replacement"].rsplit(":", 1)[1])}
    return {endpoint["portNumber"]} if "portNumber" in endpoint else {{"http-usermetric": 9091}[endpoint["port"]]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_prometheus_may_reach_every_port_the_model_pod_monitors_scrape(request, stack):
    """The serving namespace denies ingress by default: every model's metrics port, queue-proxy and
    model server alike, is one the Prometheus flow opens."""
    rendering = request.getfixturevalue(stack)
    (rule,) = policies(rendering)[("mlops-serving", "allow-prometheus")]["ingress"]
    monitors = [m for m in rendering.by_type("kubernetes:monitoring.coreos.com/v1:PodMonitor") if m.inputs["metadata"]["namespace"] == "mlops-serving"]
    scraped = {port for monitor in monitors for endpoint in monitor.inputs["spec"]["podMetricsEndpoints"] for port in scraped_ports(endpoint)}
    assert monitors and scraped <= ports(rule), scraped - ports(rule)
