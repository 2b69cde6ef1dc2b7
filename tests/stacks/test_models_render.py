"""Declared models rendered through the real program on all three targets (local dev, AWS prod, GCP prod).

Each InferenceService must validate against the KServe CRD and split traffic, land on GPUs, log
payloads and autoscale exactly as its declaration says; every object a model brings validates.
"""

from __future__ import annotations

import json

import pytest

from mlops.offline.render import RenderedResource, Rendering, manifest_of, render
from mlops.offline.validate import ReferenceData, validate_rendering
from stacks.config import load_stack_config
from mlops.stackfiles import ProjectFiles
from components.foundation.local.object_store import LOCAL_BUCKETS
from tests.conftest import PROJECT_DIR, REFERENCE_DIR

TARGETS = {"local-dev": ("dev", {}), "aws-prod": ("prod", {}), "gcp-prod": ("prod", {"mlops:cloud": "gcp"})}
MODEL_COMPONENTS = ("mlops:serving:ModelDeployment", "mlops:serving:ModelServingAccess")
RAW_PROD = {
    "mlops:kserve.deploymentMode": "RawDeployment",
    "mlops:models[0].canary.previousVersion": "6",
    "mlops:models[0].autoscaling.metric": "cpu",
    "mlops:models[1].autoscaling.metric": "cpu",
}


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    return ReferenceData(REFERENCE_DIR)


@pytest.fixture(scope="module", params=sorted(TARGETS))
def target(request) -> tuple[str, Rendering]:
    stack, overrides = TARGETS[request.param]
    return request.param, render(PROJECT_DIR, stack, overrides)


def model_resources(rendering: Rendering) -> list[RenderedResource]:
    return [r for r in rendering.resources if any(f"{c}$" in r.urn or r.type == c for c in MODEL_COMPONENTS)]


def manifests(rendering: Rendering, kind: str) -> dict[str, dict]:
    found = {}
    for resource in model_resources(rendering):
        if resource.is_manifest:
            manifest = manifest_of(resource)
            if manifest["kind"] == kind:
                found[manifest["metadata"]["name"]] = manifest
    return found


def declared(rendering: Rendering):
    return load_stack_config(rendering.config).models


def test_every_model_object_validates(target, reference):
    """InferenceServices, PodMonitors, PrometheusRules (CRDs) and core objects of the models pass validation."""
    name, rendering = target
    mine = Rendering(rendering.project, rendering.stack, rendering.config, model_resources(rendering))
    assert [str(f) for f in validate_rendering(mine, reference, "1.35")] == []


def test_each_declared_model_has_its_objects(target):
    """Per model: one InferenceService, PodMonitor, PrometheusRule, dashboard ConfigMap and drift CronJob."""
    _, rendering = target
    names = {m.name for m in declared(rendering)}
    assert set(manifests(rendering, "InferenceService")) == names
    assert set(manifests(rendering, "PodMonitor")) == {f"mlops-model-{n}" for n in names}
    assert set(manifests(rendering, "PrometheusRule")) == {f"mlops-model-{n}" for n in names}
    assert set(manifests(rendering, "CronJob")) == {f"{n}-drift" for n in names}
    dashboards = manifests(rendering, "ConfigMap")
    assert {d["metadata"]["labels"]["grafana_dashboard"] for d in dashboards.values()} == {"1"}
    assert {d["metadata"]["namespace"] for d in dashboards.values()} == {"mlops-monitoring"}


def test_inference_services_match_their_declarations(target):
    """Canary percent, artifact, version labels, GPU limits, autoscaling and logger URL as declared."""
    _, rendering = target
    collector_url = rendering.outputs["collectorUrl"]
    services = manifests(rendering, "InferenceService")
    for model in declared(rendering):
        predictor = services[model.name]["spec"]["predictor"]
        expected_percent = model.canary.traffic_percent if model.canary else 100
        assert predictor["canaryTrafficPercent"] == expected_percent
        # Declared store-relative; served from the stack's artifact bucket on its cloud.
        bucket = rendering.outputs.get("artifactBucket", LOCAL_BUCKETS[0])
        scheme = "gs" if rendering.outputs.get("project") else "s3"
        assert predictor["model"]["storageUri"] == f"{scheme}://{bucket}/{model.model.artifact_uri}"
        assert predictor["labels"]["mlops.platform/model-version"] == model.model.deployed_version
        assert predictor["logger"]["url"] == collector_url and predictor["logger"]["mode"] == "all"
        scaling = model.autoscaling
        assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleMetric"], predictor["scaleTarget"]) == (
            scaling.min_replicas, scaling.max_replicas, scaling.metric, scaling.target
        )
        gpus = predictor["model"]["resources"]["limits"].get("nvidia.com/gpu")
        assert gpus == (str(model.resources.gpus) if model.resources.gpus else None)


def test_gpu_models_land_on_their_pool_on_each_cloud(target):
    """The GPU model selects its pool's nodes and tolerates the GPU taint; CPU models do neither."""
    name, rendering = target
    services = manifests(rendering, "InferenceService")
    for model in declared(rendering):
        predictor = services[model.name]["spec"]["predictor"]
        if model.resources.gpus:
            assert predictor["nodeSelector"], name
            assert any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule" for t in predictor["tolerations"])
        else:
            assert "nodeSelector" not in predictor and "tolerations" not in predictor


def test_prod_declares_a_cpu_canary_and_a_gpu_model():
    """Pulumi.prod.yaml: fraud-detector at 10 % canary on CPU, image-embedder on the gpu-l4 pool."""
    models = {m.name: m for m in load_stack_config(ProjectFiles(PROJECT_DIR).stack_config("prod", {})).models}
    assert models["fraud-detector"].canary.traffic_percent == 10 and models["fraud-detector"].resources.gpus == 0
    assert models["image-embedder"].resources.gpu_pool == "gpu-l4" and models["image-embedder"].resources.gpus == 1


def test_drift_job_runs_under_the_cloud_identity(target):
    """The drift-job service account carries the foundation's identity annotations (none on local)."""
    name, rendering = target
    (account,) = [manifest_of(r) for r in model_resources(rendering) if r.type == "kubernetes:core/v1:ServiceAccount"]
    annotations = account["metadata"].get("annotations") or {}
    expected = {"local-dev": set(), "aws-prod": {"eks.amazonaws.com/role-arn"}, "gcp-prod": {"iam.gke.io/gcp-service-account"}}[name]
    assert expected <= set(annotations) and (expected or not annotations)
    for job in manifests(rendering, "CronJob").values():
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"] == "drift-job"


def test_custom_resources_wait_for_their_crds(target):
    """InferenceService, PodMonitor and PrometheusRule depend on the CRD-installing charts."""
    _, rendering = target
    for resource in model_resources(rendering):
        if resource.type == "kubernetes:apiextensions.k8s.io/v1:CustomResource" or "serving.kserve.io" in resource.type or "monitoring.coreos.com" in resource.type:
            assert any("kserve" in urn for urn in resource.options["dependsOn"]), resource.urn


def test_model_deployments_are_components_with_parented_children(target):
    """Each model is one `mlops:serving:ModelDeployment`, parent of its objects."""
    _, rendering = target
    components = {r.name: r.urn for r in rendering.by_type("mlops:serving:ModelDeployment")}
    assert set(components) == {f"model-{m.name}" for m in declared(rendering)}
    for name, urn in components.items():
        children = [r for r in rendering.resources if r.parent == urn]
        assert len(children) == 5 and all(c.name.startswith(name) for c in children)


def test_raw_deployment_prod_renders_spec_canary(reference):
    """RawDeployment prod: the canary is a spec.canary entry (never canaryTrafficPercent) and validates."""
    rendering = render(PROJECT_DIR, "prod", RAW_PROD)
    mine = Rendering(rendering.project, rendering.stack, rendering.config, model_resources(rendering))
    assert [str(f) for f in validate_rendering(mine, reference, "1.35")] == []
    fraud = manifests(rendering, "InferenceService")["fraud-detector"]
    assert "canaryTrafficPercent" not in json.dumps(fraud)
    assert fraud["spec"]["canary"][0]["trafficPercent"] == 10
    assert fraud["spec"]["predictor"]["name"] == "v6"
