"""NetworkPolicies open exactly the flows the platform needs, on top of default-deny."""

from __future__ import annotations

import pytest

from mlops.offline.render import Rendering, render
from tests.conftest import PROJECT_DIR

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


def test_exactly_these_policies_exist(dev):
    """Nothing opened that is not listed here; default-deny in the platform and serving namespaces."""
    assert sorted(policies(dev)) == [
        ("mlops-platform", "allow-cloud-apis"),
        ("mlops-platform", "allow-managed-database"),
        ("mlops-platform", "allow-mlflow-clients"),
        ("mlops-platform", "allow-object-store-clients"),
        ("mlops-platform", "allow-payload-collector-clients"),
        ("mlops-platform", "allow-postgres-clients"),
        ("mlops-platform", "default-deny"),
        ("mlops-serving", "allow-cloud-apis"),
        ("mlops-serving", "allow-platform-services"),
        ("mlops-serving", "allow-prometheus"),
        ("mlops-serving", "allow-pushgateway"),
        ("mlops-serving", "allow-serving-gateways"),
        ("mlops-serving", "default-deny"),
    ]


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
        ("mlops-serving", "allow-serving-gateways", "ingress", ["ns=knative-serving", "ns=kourier-system"], {8012, 8080, 9090}),
        ("mlops-serving", "allow-prometheus", "ingress", ["ns=mlops-monitoring"], {8080, 8082, 9091}),
    ],
)
def test_each_flow_opens_one_peer_set_on_its_ports(dev, namespace, name, direction, expected_peers, expected_ports):
    spec = policies(dev)[(namespace, name)]
    assert spec["policyTypes"] == [direction.capitalize()]
    (rule,) = spec[direction]
    assert peers(rule, "from" if direction == "ingress" else "to") == expected_peers
    assert ports(rule) == expected_ports


def test_mlflow_is_reachable_from_any_namespace_only_behind_an_ingress():
    """With a public host name the ingress controller (in a namespace of the cluster's choosing) must reach MLflow."""
    spec = policies(render(PROJECT_DIR, "dev", {"mlops:mlflow.hostname": "mlflow.example.com"}))[("mlops-platform", "allow-mlflow-clients")]
    assert peers(spec["ingress"][0], "from") == ["any-namespace"]


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
    monitors = rendering.by_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")
    scraped = {port for monitor in monitors for endpoint in monitor.inputs["spec"]["podMetricsEndpoints"] for port in scraped_ports(endpoint)}
    assert monitors and scraped <= ports(rule), scraped - ports(rule)
