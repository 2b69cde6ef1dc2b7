"""Knative Serving and Kourier: installed for Serverless mode, in order, pinned, and configured for
the InferenceServices the platform renders."""

from __future__ import annotations

import pulumi
import pytest

from components.platform.knative import (
    GATEWAY_NAMESPACE,
    GATEWAY_SERVICE,
    INGRESS_CLASS,
    POD_FEATURES,
    POD_FIELD_FLAGS,
    REQUEST_METRICS,
    cluster_internal_gateway,
)
from components.pod_requests import QUEUE_PROXY_RESOURCES
from mlops.offline.render import RenderedResource, Rendering, render
from mlops.offline.validate import validate_manifest_source
from tests.conftest import PROJECT_DIR

CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"
CONFIG_MAP_PATCH = "kubernetes:core/v1:ConfigMapPatch"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"


@pytest.fixture(scope="module")
def prod_gcp() -> Rendering:
    return render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp"})


def by_name(rendering: Rendering, type_token: str) -> dict[str, RenderedResource]:
    return {r.name: r for r in rendering.by_type(type_token)}


def depends_on(resource: RenderedResource, other: RenderedResource) -> bool:
    return other.urn in resource.options["dependsOn"]


@pytest.mark.parametrize("stack", ["dev", "prod", "prod_gcp"])
def test_release_manifests_are_applied_crds_then_core_then_kourier(request, stack):
    files = by_name(request.getfixturevalue(stack), CONFIG_FILE)
    crds, core, kourier = files["knative-crds"], files["knative-core"], files["knative-kourier"]
    assert crds.inputs["file"].endswith("/serving-crds.yaml")
    assert core.inputs["file"].endswith("/serving-core.yaml")
    assert kourier.inputs["file"].endswith("/kourier.yaml")
    assert depends_on(core, crds)
    assert depends_on(kourier, core)


def test_release_manifests_name_exact_releases(prod):
    files = prod.by_type(CONFIG_FILE)
    assert files
    assert [finding for f in files for finding in validate_manifest_source(f)] == []


def test_knative_routes_through_kourier_once_core_is_applied(prod):
    network = by_name(prod, CONFIG_MAP_PATCH)["knative-config-network"]
    assert network.inputs["metadata"]["name"] == "config-network"
    assert network.inputs["metadata"]["namespace"] == "knative-serving"
    assert network.inputs["data"] == {"ingress-class": INGRESS_CLASS}
    assert depends_on(network, by_name(prod, CONFIG_FILE)["knative-core"])


def test_kserve_controller_waits_for_all_of_knative_and_creates_no_istio_routes(prod):
    (controller,) = [r for r in prod.by_type("kubernetes:helm.sh/v4:Chart") if str(r.inputs["chart"]).endswith("/kserve-resources")]
    knative = [*prod.by_type(CONFIG_FILE), *prod.by_type(CONFIG_MAP_PATCH)]
    assert len(knative) == 7
    assert all(depends_on(controller, part) for part in knative)
    assert controller.inputs["values"]["kserve"]["controller"]["gateway"] == {"disableIstioVirtualHost": True}


def test_raw_deployment_mode_installs_no_knative():
    rendering = render(PROJECT_DIR, "dev", {"mlops:kserve.deploymentMode": "RawDeployment", "mlops:models": "[]"})
    assert rendering.by_type(CONFIG_FILE) == []
    assert rendering.by_type(CONFIG_MAP_PATCH) == []
    assert [r for r in rendering.resources if r.type == "mlops:platform:KnativeServing"] == []
    (controller,) = [r for r in rendering.by_type("kubernetes:helm.sh/v4:Chart") if str(r.inputs["chart"]).endswith("/kserve-resources")]
    assert "gateway" not in controller.inputs["values"]["kserve"]["controller"]


def gated_pod_fields(isvc: RenderedResource) -> set[str]:
    """Pod fields of every predictor of an InferenceService that Knative accepts only when enabled."""
    spec = isvc.inputs["spec"]
    pods = [spec["predictor"], *(entry["predictor"] for entry in spec.get("canary", []))]
    used = set()
    for pod in pods:
        used.update(field for field in POD_FIELD_FLAGS if pod.get(field))
    return used


def test_every_pod_field_the_models_set_is_enabled_and_nothing_else(dev, prod):
    """A field Knative has not been told to allow makes it reject the model's revision."""
    used = set().union(*(gated_pod_fields(isvc) for rendering in (dev, prod) for isvc in rendering.by_type(INFERENCE_SERVICE)))
    # Prod's GPU model brings node selector and toleration; every model runs as non-root.
    assert used == {"nodeSelector", "tolerations", "securityContext"}
    features = by_name(prod, CONFIG_MAP_PATCH)["knative-config-features"]
    assert features.inputs["metadata"]["name"] == "config-features"
    assert features.inputs["data"] == {POD_FIELD_FLAGS[field]: "enabled" for field in used}
    assert features.inputs["data"] == POD_FEATURES


def test_the_queue_proxy_serves_request_metrics_where_the_model_pod_monitors_scrape(prod):
    """config-observability turns the queue-proxy's Prometheus exporter on (port 9091, named
    http-usermetric) before any model's revision exists; every model's PodMonitor scrapes that port."""
    observability = by_name(prod, CONFIG_MAP_PATCH)["knative-config-observability"]
    assert observability.inputs["metadata"]["name"] == "config-observability"
    assert observability.inputs["data"] == REQUEST_METRICS == {"request-metrics-protocol": "prometheus"}
    (controller,) = [r for r in prod.by_type("kubernetes:helm.sh/v4:Chart") if str(r.inputs["chart"]).endswith("/kserve-resources")]
    assert depends_on(controller, observability)
    # The gateway's proxies have a PodMonitor of their own, in envoy-gateway-system.
    monitors = [m for m in prod.by_type("kubernetes:monitoring.coreos.com/v1:PodMonitor") if m.inputs["metadata"]["namespace"] == "mlops-serving"]
    assert monitors and all(
        monitor.inputs["spec"]["podMetricsEndpoints"][0]["port"] == "http-usermetric" for monitor in monitors
    )


def test_knative_waits_for_a_revision_as_long_as_pulumi_waits_for_the_model(prod):
    """A shorter progress deadline fails a GPU model that is still waiting for its node."""
    deployment = by_name(prod, CONFIG_MAP_PATCH)["knative-config-deployment"]
    assert deployment.inputs["metadata"]["name"] == "config-deployment"
    timeouts = {isvc.inputs["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] for isvc in prod.by_type(INFERENCE_SERVICE)}
    assert {f"{timeout}s" for timeout in timeouts} == {deployment.inputs["data"]["progress-deadline"]}


def quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    unit = next((u for u in units if value.endswith(u)), "")
    return float(value.removesuffix(unit)) * units.get(unit, 1)


def test_the_queue_proxy_in_every_model_pod_has_requests_within_limits(prod):
    data = by_name(prod, CONFIG_MAP_PATCH)["knative-config-deployment"].inputs["data"]
    assert {key: data[key] for key in QUEUE_PROXY_RESOURCES} == QUEUE_PROXY_RESOURCES
    for resource in ("cpu", "memory"):
        assert 0 < quantity(data[f"queue-sidecar-{resource}-request"]) <= quantity(data[f"queue-sidecar-{resource}-limit"])


def transform(type_token: str, props: dict) -> pulumi.ResourceTransformResult | None:
    return cluster_internal_gateway(
        pulumi.ResourceTransformArgs(custom=True, type_=type_token, name="knative-kourier", props=props, opts=pulumi.ResourceOptions())
    )


def kourier_service(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": GATEWAY_NAMESPACE},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http2", "port": 80, "targetPort": 8080}], "selector": {"app": "3scale-kourier-gateway"}},
    }


def test_the_kourier_gateway_gets_no_cloud_load_balancer():
    result = transform("kubernetes:core/v1:Service", kourier_service(GATEWAY_SERVICE))
    assert result is not None
    assert result.props["spec"]["type"] == "ClusterIP"
    assert result.props["spec"]["ports"] == kourier_service(GATEWAY_SERVICE)["spec"]["ports"]
    assert result.props["metadata"] == kourier_service(GATEWAY_SERVICE)["metadata"]


@pytest.mark.parametrize(
    ("type_token", "props"),
    [
        ("kubernetes:core/v1:Service", kourier_service("kourier-internal")),
        ("kubernetes:core/v1:Service", {**kourier_service(GATEWAY_SERVICE), "metadata": {"name": GATEWAY_SERVICE, "namespace": "default"}}),
        ("kubernetes:apps/v1:Deployment", {"metadata": {"name": GATEWAY_SERVICE, "namespace": GATEWAY_NAMESPACE}}),
    ],
)
def test_every_other_object_of_the_release_is_left_as_published(type_token, props):
    assert transform(type_token, props) is None


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("https://github.com/knative/serving/releases/latest/download/serving-core.yaml", "follows 'latest'"),
        ("https://raw.githubusercontent.com/knative/serving/main/config/core/300-deployment.yaml", "follows 'main'"),
        ("https://example.com/knative/serving-core.yaml", "no path segment names a version"),
        ("http://github.com/knative/serving/releases/download/knative-v1.21.3/serving-core.yaml", "not https"),
    ],
)
def test_a_manifest_url_that_can_change_under_the_same_declaration_is_a_finding(location, problem):
    resource = RenderedResource(
        urn=f"urn:pulumi:t::p::{CONFIG_FILE}::x", type=CONFIG_FILE, name="x", parent=None, custom=False,
        inputs={"file": location}, options={},
    )
    (finding,) = validate_manifest_source(resource)
    assert finding.check == "manifest-source"
    assert problem in finding.message


def test_the_gateway_transform_is_attached_to_the_kourier_release_only(prod):
    files = by_name(prod, CONFIG_FILE)
    assert {name: f.options.get("transforms", 0) for name, f in files.items()} == {"knative-crds": 0, "knative-core": 0, "knative-kourier": 1}
