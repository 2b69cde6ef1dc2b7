"""The in-cluster platform as rendered on every target: valid, pinned, wired, ordered.

One rendering per target (dev on the local cluster, prod on AWS and on GCP), each checked with
`mlops validate`'s engine and then resource by resource.
"""

from __future__ import annotations

import pytest
import yaml

from mlops.offline.render import SECRET, RenderedResource, Rendering, render
from mlops.offline.validate import ReferenceData, validate_rendering
from tests.conftest import PROJECT_DIR, REFERENCE_DIR

CHART = "kubernetes:helm.sh/v4:Chart"
CUSTOM = {
    "ClusterServingRuntime": "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime",
    "PrometheusRule": "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    "ServiceMonitor": "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
}
TARGETS = {"dev": ("dev", {}), "prod-aws": ("prod", {}), "prod-gcp": ("prod", {"mlops:cloud": "gcp"})}


@pytest.fixture(scope="module", params=sorted(TARGETS))
def rendering(request) -> Rendering:
    stack, overrides = TARGETS[request.param]
    return render(PROJECT_DIR, stack, overrides)


def one(rendering: Rendering, type_token: str, name: str) -> RenderedResource:
    matches = [r for r in rendering.by_type(type_token) if r.name == name]
    assert len(matches) == 1, sorted(r.name for r in rendering.by_type(type_token))
    return matches[0]


def charts(rendering: Rendering) -> dict[str, RenderedResource]:
    return {str(r.inputs["chart"]).rsplit("/", 1)[-1]: r for r in rendering.by_type(CHART)}


def test_every_object_and_chart_passes_validation(rendering):
    """Core objects against strict Kubernetes schemas, CRs against reference CRDs, chart values against defaults."""
    assert [str(f) for f in validate_rendering(rendering, ReferenceData(REFERENCE_DIR), "1.35")] == []


def test_charts_are_pinned_to_the_reference_versions(rendering):
    """Every platform chart installs exactly the version whose defaults `mlops validate` knows."""
    rendered = charts(rendering)
    for name in ("kserve-crd", "kserve-resources", "kube-prometheus-stack", "prometheus-pushgateway"):
        reference = yaml.safe_load((REFERENCE_DIR / "chart-values" / f"{name}.Chart.yaml").read_text())
        assert rendered[name].inputs["version"] == reference["version"], name
    assert rendered["cert-manager"].inputs["version"].startswith("v1.21.")


def test_custom_resources_wait_for_the_charts_that_install_their_crds(rendering):
    """No CR is sent before its CRD exists ("no matches for kind"): each depends on the CRD chart."""
    rendered = charts(rendering)
    kserve_crds, kserve_controller = rendered["kserve-crd"].urn, rendered["kserve-resources"].urn
    prometheus_crds = rendered["kube-prometheus-stack"].urn
    for runtime in rendering.by_type(CUSTOM["ClusterServingRuntime"]):
        assert {kserve_crds, kserve_controller} <= set(runtime.options["dependsOn"]), runtime.name
    for kind in ("PrometheusRule", "ServiceMonitor"):
        for resource in rendering.by_type(CUSTOM[kind]):
            if resource.parent and "ModelDeployment" in resource.parent:
                continue  # the model-deployment component wires its own monitors
            assert prometheus_crds in resource.options["dependsOn"], resource.name
    assert prometheus_crds in rendered["prometheus-pushgateway"].options["dependsOn"]
    assert {kserve_crds, rendered["cert-manager"].urn} <= set(rendered["kserve-resources"].options["dependsOn"])


def test_every_container_has_requests_limits_and_a_pinned_image(rendering):
    """Platform Deployments: CPU/memory requests and limits, an explicit tag, non-root, no privilege escalation."""
    for resource in rendering.by_type("kubernetes:apps/v1:Deployment"):
        pod = resource.inputs["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys() and {"cpu", "memory"} <= container["resources"]["limits"].keys()
            tag = container["image"].rsplit("/", 1)[-1]
            assert ":" in tag and not tag.endswith(":latest"), container["image"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_outputs_offer_what_model_deployments_rely_on(rendering):
    """Tracking URI, collector URL, Pushgateway URL, runtime names and the model service account."""
    outputs = rendering.outputs
    assert outputs["mlflowTrackingUri"] == "http://mlflow.mlops-platform.svc:5000"
    assert outputs["collectorUrl"] == "http://payload-collector.mlops-platform.svc:8080"
    assert outputs["pushgatewayUrl"] == "http://prometheus-pushgateway.mlops-monitoring.svc:9091"
    assert outputs["servingRuntimes"] == {"mlflow": "mlops-mlserver", "sklearn": "mlops-sklearnserver", "xgboost": "mlops-xgbserver"}
    assert outputs["modelServiceAccount"] == "model-server"
    assert outputs["mlflowAdminPassword"] == SECRET


def test_platform_resources_wait_for_namespaces(dev):
    """Every top-level platform component is created after the namespaces it lives in."""
    # Depending on a component means depending on its children: the Namespace objects.
    namespaces = {r.urn for r in dev.by_type("kubernetes:core/v1:Namespace")}
    assert len(namespaces) == 5
    for token in ("mlops:platform:Mlflow", "mlops:platform:KServe", "mlops:platform:Monitoring", "mlops:platform:PayloadCollector", "mlops:platform:CertManager"):
        (component,) = dev.by_type(token)
        assert namespaces <= set(component.options["dependsOn"]), token
