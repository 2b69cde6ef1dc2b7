"""The canary guard as the platform deploys it, and what happens after it aborts a canary.

- the InferenceService fixtures the runtime guard test patches are what the platform renders;
- the rendered guard config is what the guard reads (parsed by the guard's own loader), listing
  exactly the models in canary, with the RawDeployment predictor the guard patches;
- RBAC: get/patch InferenceServices and create Events in the serving namespace, nothing else;
- after an abort, `mlops rollback` makes the stack config follow it: the next render serves the
  previous version, gives the aborted one no traffic and no longer lists it for the guard (offline).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.model.serving import predictor_name
from components.platform.canary_guard import APP, CONFIG_FILE, guard_config, guard_role_rules, in_canary
from mlops.offline.render import render
from monitoring.canary.guard import load_config
from tests.components.test_model_deployment import declaration, isvc
from tests.conftest import PROJECT_DIR
# The stack file, recorded history and fake pulumi CLI the rollback tests use.
from tests.spine.test_rollback import project, pulumi, run  # noqa: F401 (fixtures)

FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "inferenceservices"


@pytest.mark.parametrize("mode", ["Serverless", "RawDeployment"])
def test_runtime_fixtures_are_the_rendered_inference_services(mode):
    """Regenerate with: json.dumps(isvc(declaration(), mode), indent=2, sort_keys=True)."""
    assert json.loads((FIXTURES / f"fraud-detector.{mode}.json").read_text()) == isvc(declaration(), mode)


@pytest.mark.parametrize("mode", ["Serverless", "RawDeployment"])
def test_the_guard_reads_the_config_the_platform_renders(tmp_path, mode):
    models = [
        declaration(),
        declaration(name="promoted", canary={"trafficPercent": 100}),
        declaration(name="rolled-back", canary={"trafficPercent": 0, "previousVersion": "6", "previousArtifactUri": "s3://a/6"}),
        declaration(name="no-canary", canary=None),
    ]
    assert [m.name for m in models if in_canary(m)] == ["fraud-detector"]
    path = tmp_path / CONFIG_FILE
    path.write_text(json.dumps(guard_config(models, mode)))
    prometheus_url, (spec,) = load_config(path)
    assert prometheus_url == "http://kube-prometheus-stack-prometheus.mlops-monitoring.svc:9090"
    assert (spec.model, spec.canary_version, spec.mode) == ("fraud-detector", "7", mode)
    assert (spec.gates.max_error_rate, spec.gates.max_p99_latency_ms, spec.gates.min_request_count, spec.gates.window) == (0.01, 250, 500, "15m")
    if mode == "RawDeployment":
        rendered_canary = isvc(declaration(), mode)["spec"]["canary"]
        assert [entry["predictor"]["name"] for entry in rendered_canary] == [spec.canary_predictor] == [predictor_name("7")]


@pytest.fixture(scope="module")
def prod_objects() -> list[dict[str, Any]]:
    return [manifest for _, manifest in render(PROJECT_DIR, "prod").manifests()]


def test_rbac_lets_the_guard_patch_inference_services_in_the_serving_namespace_only(prod_objects):
    rbac = [o for o in prod_objects if o["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding") and o["metadata"]["name"] == APP]
    assert sorted((o["kind"], o["metadata"]["namespace"]) for o in rbac) == [("Role", "mlops-serving"), ("RoleBinding", "mlops-serving")]
    role = next(o for o in rbac if o["kind"] == "Role")
    assert role["rules"] == guard_role_rules() == [
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    binding = next(o for o in rbac if o["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": APP, "namespace": "mlops-monitoring"}]
    deployment = next(o for o in prod_objects if o["kind"] == "Deployment" and o["metadata"]["name"] == APP)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == APP and pod["containers"][0]["command"] == ["python", "-m", "monitoring.canary.guard"]


def guard_canaries(project: Path) -> list[str]:
    objects = [manifest for _, manifest in render(project, "prod").manifests()]
    config_map = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == APP)
    return [c["model"] for c in json.loads(config_map["data"][CONFIG_FILE])["canaries"]]


def fraud_predictor(project: Path) -> dict[str, Any]:
    objects = [manifest for _, manifest in render(project, "prod").manifests()]
    return next(o for o in objects if o["kind"] == "InferenceService" and o["metadata"]["name"] == "fraud-detector")["spec"]["predictor"]


@pytest.mark.parametrize("follow", [("--traffic",), ()], ids=["traffic", "declaration"])
def test_after_an_abort_mlops_rollback_makes_the_config_follow(project, pulumi, capsys, follow):
    """The guard set fraud-detector 7's traffic to 0; the stack file still says 10 %, so the next
    `pulumi up` would give it traffic again. `mlops rollback --traffic` writes the abort into the
    file (0 %), `mlops rollback` restores the declaration before version 7: either way the render
    gives version 7 no traffic and the guard has no canary left to judge (pulumi is a fake here)."""
    before = fraud_predictor(project)
    assert before["canaryTrafficPercent"] == 10 and "9b1e2f3a" in before["model"]["storageUri"]
    assert guard_canaries(project) == ["fraud-detector"]
    code, _, err = run(project, "fraud-detector", *follow, capsys=capsys)
    assert code == 0, err
    after = fraud_predictor(project)
    if follow:
        assert after["canaryTrafficPercent"] == 0
    else:
        assert after["canaryTrafficPercent"] == 100 and "9b1e2f3a" not in after["model"]["storageUri"]
    assert guard_canaries(project) == []
