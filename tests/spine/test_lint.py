"""The platform lint inside `mlops validate`: the committed stacks pass, and each rule fails on a
render broken the way a reviewer would catch it, naming the object."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from mlops.cli import main
from mlops.offline.lint import RenderIndex, lint_rendering, required_flows
from mlops.offline.render import Rendering, render
from mlops.project import EXIT_FAILED
from tests.conftest import PROJECT_DIR, REFERENCE_DIR
from tests.exposure import EXPOSED, RAW

PROMTOOL = shutil.which("promtool")


@pytest.fixture(scope="module")
def gcp_prod_rendering() -> Rendering:
    return render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp"})


def test_the_committed_stacks_pass(dev_rendering, prod_rendering, gcp_prod_rendering):
    for rendering in (dev_rendering, prod_rendering, gcp_prod_rendering):
        assert lint_rendering(rendering, PROMTOOL) == []


def broken(rendering: Rendering, kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> Rendering:
    """A copy of the rendering with one manifest (or node pool) changed in place."""
    copied = copy.deepcopy(rendering)
    (target,) = [
        r for r in copied.resources
        if isinstance(r.inputs, dict) and (r.inputs.get("kind") == kind or r.type == kind)
        and ((r.inputs.get("metadata") or {}).get("name") == name or r.name == name)
    ]
    change(target.inputs)
    return copied


def messages(rendering: Rendering) -> list[str]:
    return [str(finding) for finding in lint_rendering(rendering, PROMTOOL)]


def containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return manifest["spec"]["template"]["spec"]["containers"]


def test_a_secret_nothing_creates_is_named(dev_rendering):
    def reference_missing_secret(deployment):
        containers(deployment)[0].setdefault("env", []).append({"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "mlflow-tokn", "key": "t"}}})

    assert messages(broken(dev_rendering, "Deployment", "mlflow", reference_missing_secret)) == [
        "lint references: Deployment mlops-platform/mlflow: names Secret 'mlflow-tokn', which nothing in the render creates"
    ]


@pytest.mark.parametrize(("field", "value", "kind"), [
    ("serviceAccountName", "collector-sa", "ServiceAccount"),
    ("priorityClassName", "platform-critical", "PriorityClass"),
])
def test_service_accounts_and_priority_classes_must_exist(dev_rendering, field, value, kind):
    def point_at(deployment):
        deployment["spec"]["template"]["spec"][field] = value

    assert messages(broken(dev_rendering, "Deployment", "payload-collector", point_at)) == [
        f"lint references: Deployment mlops-platform/payload-collector: names {kind} {value!r}, which nothing in the render creates"
    ]


def test_a_claim_on_a_storage_class_nobody_made_is_named(prod_rendering):
    def claim_io2(claim):
        claim["spec"]["storageClassName"] = "io2-fast"

    (claim,) = [r for r in prod_rendering.resources if r.type == "kubernetes:core/v1:PersistentVolumeClaim"][:1]
    name = claim.inputs["metadata"]["name"]
    found = messages(broken(prod_rendering, "PersistentVolumeClaim", name, claim_io2))
    assert found == [f"lint references: PersistentVolumeClaim {claim.inputs['metadata']['namespace']}/{name}: claims StorageClass 'io2-fast', which nothing in the render creates"]


def test_a_service_selecting_no_pod_is_named(dev_rendering):
    def mistype(service):
        service["spec"]["selector"] = {"app.kubernetes.io/name": "mlfow"}

    assert messages(broken(dev_rendering, "Service", "mlflow", mistype)) == [
        "lint services: Service mlops-platform/mlflow: selects {'app.kubernetes.io/name': 'mlfow'}, but no pod the render runs in mlops-platform carries those labels"
    ]


def test_a_service_target_port_the_pods_do_not_expose_is_named(dev_rendering):
    def retarget(service):
        service["spec"]["ports"][0]["targetPort"] = "metrics"

    assert messages(broken(dev_rendering, "Service", "payload-collector", retarget)) == [
        "lint services: Service mlops-platform/payload-collector: port http targets 'metrics', which no selected pod (Deployment mlops-platform/payload-collector) exposes"
    ]


def test_a_service_monitor_on_a_port_the_service_lacks_is_named(dev_rendering):
    def scrape_metrics_port(monitor):
        monitor["spec"]["endpoints"][0]["port"] = "metrics"

    assert messages(broken(dev_rendering, "ServiceMonitor", "mlflow", scrape_metrics_port)) == [
        "lint monitors: ServiceMonitor mlops-platform/mlflow: scrapes port 'metrics', which the selected Service(s) do not name"
    ]


def test_a_pod_monitor_selecting_no_pod_is_named(dev_rendering):
    def select_nothing(monitor):
        monitor["spec"]["selector"] = {"matchLabels": {"mlops.platform/model": "churn"}}

    found = messages(broken(dev_rendering, "PodMonitor", "mlops-model-churn-classifier", select_nothing))
    assert found == [
        "lint monitors: PodMonitor mlops-serving/mlops-model-churn-classifier: selects {'matchLabels': {'mlops.platform/model': 'churn'}}, which matches no pod the render runs"
    ]


def test_monitors_prometheus_does_not_select_are_named(dev_rendering):
    """kube-prometheus-stack's default: only objects labelled release=<release> are picked up."""
    def restore_chart_default(release):
        spec = release["values"]["prometheus"]["prometheusSpec"]
        del spec["serviceMonitorSelectorNilUsesHelmValues"]

    found = messages(broken(dev_rendering, "kubernetes:helm.sh/v4:Chart", "monitoring-stack", restore_chart_default))
    assert found and all(f.startswith("lint monitors: ServiceMonitor ") and "is not picked up by Prometheus" in f for f in found)
    assert any("ServiceMonitor mlops-platform/mlflow" in f for f in found)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus package) not installed")
def test_an_expression_promtool_refuses_is_named(dev_rendering):
    def break_first_rule(rule):
        rule["spec"]["groups"][0]["rules"][0]["expr"] = "rate(mlops_collector_events_received_total[0m])"

    (rule,) = [r for r in dev_rendering.resources if r.type.endswith(":PrometheusRule")][:1]
    name = rule.inputs["metadata"]["name"]
    found = messages(broken(dev_rendering, "PrometheusRule", name, break_first_rule))
    assert len(found) == 1 and found[0].startswith(f"lint promql: PrometheusRule {rule.inputs['metadata']['namespace']}/{name} ")
    assert "promtool refuses 'rate(mlops_collector_events_received_total[0m])'" in found[0] and "duration must be greater than 0" in found[0]


def test_a_pinned_pod_without_the_pools_toleration_is_named(prod_rendering):
    def drop_tolerations(isvc):
        isvc["spec"]["predictor"]["tolerations"] = []

    assert messages(broken(prod_rendering, "InferenceService", "image-embedder", drop_tolerations)) == [
        "lint placement: InferenceService mlops-serving/image-embedder: is pinned to pool 'gpu-l4' but does not tolerate its taint(s) "
        "nvidia.com/gpu=true:NoSchedule"
    ]


def test_a_pinned_pod_larger_than_a_node_is_named(gcp_prod_rendering):
    def request_too_much(isvc):
        isvc["spec"]["predictor"]["model"]["resources"]["requests"]["memory"] = "40Gi"

    found = messages(broken(gcp_prod_rendering, "InferenceService", "image-embedder", request_too_much))
    assert found == [
        "lint placement: InferenceService mlops-serving/image-embedder: requests 40960Mi memory; a node of pool 'gpu-l4' "
        "(g2-standard-8) has 29022Mi allocatable"
    ]


def test_validate_fails_on_a_lint_finding(capsys, monkeypatch):
    """Wired into `mlops validate`: a finding is a failure, exit 1."""
    import mlops.offline.lint as lint

    monkeypatch.delitem(lint.PROVIDED_OUTSIDE, ("ServiceAccount", "*", "default"))
    code = main(["validate", "--stack", "dev", "--project-dir", str(PROJECT_DIR), "--reference", str(REFERENCE_DIR), "--no-scan"])
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert "lint references: Job mlops-platform/object-store-create-buckets: names ServiceAccount 'default'" in out


def test_a_required_flow_the_policies_deny_is_named(dev_rendering):
    def only_monitoring(policy):
        policy["spec"]["ingress"][0]["from"] = [p for p in policy["spec"]["ingress"][0]["from"] if "mlops-serving" not in str(p)]

    assert messages(broken(dev_rendering, "NetworkPolicy", "allow-payload-collector-clients", only_monitoring)) == [
        "lint flows: InferenceService mlops-serving/churn-classifier -> Deployment mlops-platform/payload-collector:8080: "
        "inference logger -> collector is denied by the NetworkPolicies"
    ]


def test_a_flow_nobody_needs_the_policies_allow_is_named(dev_rendering):
    """Model pods reaching PostgreSQL takes two mistakes: serving's egress and the database's ingress."""
    def open_database(policy):
        policy["spec"]["ingress"][0]["from"].append({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mlops-serving"}}})

    def egress_to_5432(policy):
        policy["spec"]["egress"][0]["ports"].append({"port": 5432, "protocol": "TCP"})

    opened = broken(broken(dev_rendering, "NetworkPolicy", "allow-postgres-clients", open_database), "NetworkPolicy", "allow-platform-services", egress_to_5432)
    assert messages(opened) == [
        "lint flows: InferenceService mlops-serving/churn-classifier -> StatefulSet mlops-platform/postgres:5432: "
        "model -> database is allowed, though nothing needs it"
    ]


def test_an_expression_naming_a_metric_nothing_exports_is_named(dev_rendering):
    """A typo in a metric name parses fine and never fires: the catalog catches it."""
    def misspell(rule):
        rule["spec"]["groups"][0]["rules"][0]["expr"] = "sum(rate(mlops_collector_events_recieved_total[5m])) > 0"

    (rule,) = [r for r in dev_rendering.resources if r.type.endswith(":PrometheusRule")][:1]
    metadata = rule.inputs["metadata"]
    found = [f for f in messages(broken(dev_rendering, "PrometheusRule", metadata["name"], misspell)) if "catalog" in f]
    assert len(found) == 1 and found[0].startswith(f"lint promql: PrometheusRule {metadata['namespace']}/{metadata['name']} ")
    assert found[0].endswith("names ['mlops_collector_events_recieved_total'], which no platform component exports (monitoring/catalog.py)")


# --- teams -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teams_rendering() -> Rendering:
    """Prod with its two models in two teams' namespaces."""
    teams = [
        {"name": "fraud", "groups": ["fraud-engineers"], "quota": {"cpu": "40", "memory": "100Gi", "gpus": 0}},
        {"name": "vision", "groups": ["vision-engineers"], "quota": {"cpu": "40", "memory": "120Gi", "gpus": 4}},
    ]
    return render(PROJECT_DIR, "prod", {"mlops:teams": json.dumps(teams), "mlops:models[0].team": "fraud", "mlops:models[1].team": "vision"})


def policy_in(rendering: Rendering, namespace: str, name: str, change: Callable[[dict[str, Any]], None]) -> Rendering:
    copied = copy.deepcopy(rendering)
    (target,) = [
        r for r in copied.resources
        if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy" and r.inputs["metadata"] == {"name": name, "namespace": namespace}
    ]
    change(target.inputs)
    return copied


def test_team_models_get_the_platform_paths_and_teams_stay_apart(teams_rendering):
    """Kourier, the activator and Prometheus reach each team's model pods, its drift job reaches the
    Pushgateway and MLflow, and nothing of one team reaches the other's models (all checked by the lint)."""
    assert lint_rendering(teams_rendering, PROMTOOL) == []


def test_platform_flows_that_name_only_the_shared_namespace_deny_team_models(teams_rendering):
    """The Kourier gateway's egress naming mlops-serving instead of every model namespace."""
    def only_shared(policy):
        policy["spec"]["egress"][0]["to"] = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mlops-serving"}}}]

    found = messages(policy_in(teams_rendering, "kourier-system", "allow-model-pods", only_shared))
    assert sorted(f.split(": ", 2)[1] for f in found) == [
        "Kourier gateway -> InferenceService team-fraud/fraud-detector:8012",
        "Kourier gateway -> InferenceService team-vision/image-embedder:8012",
    ]


def test_one_team_opening_to_another_is_named_once_both_sides_allow_it(teams_rendering):
    """Team fraud's egress and team vision's ingress both opened to each other: the lint names the flows."""
    def egress_to_vision(policy):
        policy["spec"]["egress"].append({"to": [{"namespaceSelector": {"matchLabels": {"mlops-platform/team": "vision"}}}]})

    def ingress_from_fraud(policy):
        policy["spec"].setdefault("ingress", []).append({"from": [{"namespaceSelector": {"matchLabels": {"mlops-platform/team": "fraud"}}}]})

    opened = policy_in(teams_rendering, "team-fraud", "default-deny", egress_to_vision)
    assert messages(opened) == []  # vision's default-deny still refuses
    opened = policy_in(opened, "team-vision", "default-deny", ingress_from_fraud)
    found = messages(opened)
    assert found and all("team-fraud -> team-vision (another team's model) is allowed, though nothing needs it" in f for f in found)
    assert {f.split(": ", 2)[1].split(" -> ")[1] for f in found} == {
        "InferenceService team-vision/image-embedder:8012", "InferenceService team-vision/image-embedder:8080"
    }


# --- the platform gateway ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exposed_rendering() -> Rendering:
    return render(PROJECT_DIR, "prod", EXPOSED)


@pytest.fixture(scope="module")
def exposed_raw_rendering() -> Rendering:
    return render(PROJECT_DIR, "prod", {**EXPOSED, **RAW})


def test_a_stack_with_public_endpoints_passes_and_checks_the_way_in(exposed_rendering, exposed_raw_rendering):
    """Outside -> Envoy -> Kourier (Serverless) or -> predictor (RawDeployment, stable and canary) are
    required flows, and they hold under the rendered NetworkPolicies."""
    for rendering in (exposed_rendering, exposed_raw_rendering):
        assert lint_rendering(rendering, PROMTOOL) == []
    serverless = {(flow[0].split(" (")[0], flow[2].name, flow[3]) for flow in required_flows(RenderIndex(exposed_rendering))}
    raw = {(flow[0].split(" (")[0], flow[2].name, flow[3]) for flow in required_flows(RenderIndex(exposed_raw_rendering))}
    assert ("external -> gateway", "platform gateway (Envoy)", 10443) in serverless
    assert ("gateway -> Service kourier-system/kourier-internal:80", "Kourier gateway", 8081) in serverless
    assert ("gateway -> Service mlops-serving/fraud-detector-v6-predictor:80", "InferenceService mlops-serving/fraud-detector", 8080) in raw
    assert ("gateway -> Service mlops-serving/fraud-detector-v7-predictor:80", "InferenceService mlops-serving/fraud-detector", 8080) in raw


def from_another_namespace(policy: dict[str, Any]) -> None:
    policy["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]


def test_a_gateway_flow_the_policies_deny_is_named(exposed_rendering):
    """Kourier's ingress from the gateway namespace gone: the flow and both model routes are named."""
    found = messages(policy_in(exposed_rendering, "kourier-system", "allow-platform-gateway", from_another_namespace))
    assert found == [
        "lint flows: platform gateway (Envoy) -> Kourier gateway:8081: gateway -> Service kourier-system/kourier-internal:80 "
        f"(HTTPRoute mlops-serving/{model}) is denied by the NetworkPolicies"
        for model in ("fraud-detector", "image-embedder")
    ] + [
        f"lint routes: HTTPRoute mlops-serving/{model}: Service kourier-system/kourier-internal:80 (Kourier gateway:8081) "
        "is unreachable from the gateway under the NetworkPolicies"
        for model in ("fraud-detector", "image-embedder")
    ]


def test_a_raw_predictor_the_gateway_cannot_reach_is_named(exposed_raw_rendering):
    found = [f for f in messages(policy_in(exposed_raw_rendering, "mlops-serving", "allow-platform-gateway", from_another_namespace)) if f.startswith("lint routes")]
    assert found == [
        f"lint routes: HTTPRoute mlops-serving/{route}: Service mlops-serving/{service}:80 (InferenceService mlops-serving/{route}:8080) "
        "is unreachable from the gateway under the NetworkPolicies"
        for route, service in (("fraud-detector", "fraud-detector-v6-predictor"), ("fraud-detector", "fraud-detector-v7-predictor"),
                               ("image-embedder", "image-embedder-vchampion-predictor"))
    ]


def test_a_route_to_a_service_nobody_makes_is_named(exposed_rendering):
    def misspell(route):
        route["spec"]["rules"][0]["backendRefs"][0]["name"] = "mlfow"

    assert messages(broken(exposed_rendering, "HTTPRoute", "mlflow", misspell)) == [
        "lint routes: HTTPRoute mlops-platform/mlflow: sends traffic to Service mlops-platform/mlfow:5000, which matches no Service "
        "and port the render, its charts or KServe make"
    ]


@pytest.mark.parametrize(("name", "expected"), [
    ("fraud-detector", "HTTPRoute mlops-serving/fraud-detector: serves a model without a SecurityPolicy authenticating callers (jwt or apiKeyAuth)"),
    ("grafana", "HTTPRoute mlops-monitoring/grafana: is on the gateway without a SecurityPolicy"),
])
def test_a_route_no_security_policy_guards_is_named(exposed_rendering, name, expected):
    def retarget(policy):
        policy["spec"]["targetRefs"][0]["name"] = f"{name}-old"

    assert messages(broken(exposed_rendering, "SecurityPolicy", name, retarget)) == [f"lint routes: {expected}"]


def test_the_gateways_proxies_are_scraped_on_the_port_envoy_gateway_gives_them(prod_rendering):
    """The proxies exist only once Envoy Gateway reconciles the Gateway: the lint runs them as the
    controller labels them, so the PodMonitor is checked against real labels and the `metrics` port."""
    assert not [m for m in messages(prod_rendering) if "envoy-proxies" in m]

    def scrape_admin_port(monitor):
        monitor["spec"]["podMetricsEndpoints"][0]["port"] = "admin"

    def select_another_gateway(monitor):
        monitor["spec"]["selector"]["matchLabels"]["gateway.envoyproxy.io/owning-gateway-name"] = "other"

    assert [m for m in messages(broken(prod_rendering, "PodMonitor", "envoy-proxies", scrape_admin_port)) if "envoy-proxies" in m]
    assert [m for m in messages(broken(prod_rendering, "PodMonitor", "envoy-proxies", select_another_gateway)) if "envoy-proxies" in m]
