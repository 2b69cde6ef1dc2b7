"""Each MLOps and cost guardrail passes a compliant model/pool and fails it with one thing changed.

InferenceServices, monitors and drift CronJobs are built here in the shape the contracts fix
(predictor labels mlops.platform/model and model-version, a PodMonitor per model, a drift CronJob
labelled with the model); node groups come from the prod rendering.
"""

from __future__ import annotations

import copy
import json

import pytest

from stacks.config.schema import Limits
from mlops.offline.render import render
from tests.conftest import PROJECT_DIR
from tests.policies.conftest import made, mutated, resource, verdicts

ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
RESTRICTED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}


def inference_service(name: str = "fraud-detector", *, gpus: int = 0, canary: int | None = 10) -> dict:
    predictor: dict = {
        "labels": {"mlops.platform/model": name, "mlops.platform/model-version": "7"},
        "model": {
            "modelFormat": {"name": "sklearn"},
            "storageUri": "s3://mlops-prod-artifacts/12/9b1e/artifacts/model",
            "securityContext": RESTRICTED,
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
        },
    }
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    if gpus:
        for section in ("requests", "limits"):
            predictor["model"]["resources"][section]["nvidia.com/gpu"] = str(gpus)
        predictor["nodeSelector"] = {"mlops.platform/pool": "gpu-l4"}
        predictor["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    annotations = {"mlops.platform/retraining-policy": "on_dataset_drift", "mlops.platform/retraining-webhook": "https://ci.example.com/hooks/retrain"}
    return {"metadata": {"name": name, "namespace": "mlops-serving", "annotations": annotations}, "spec": {"predictor": predictor}}


def monitor(model: str = "fraud-detector") -> dict:
    return {"metadata": {"name": model, "namespace": "mlops-serving"},
            "spec": {"selector": {"matchLabels": {"mlops.platform/model": model}}, "podMetricsEndpoints": [{"port": "http-usermetric"}]}}


def drift_job(model: str = "fraud-detector") -> dict:
    return {"metadata": {"name": f"{model}-drift", "namespace": "mlops-serving", "labels": {"mlops.platform/model": model}},
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}


def model_stack(isvc: dict | None = None, with_monitor: bool = True, with_drift: bool = True) -> list:
    resources = [made(ISVC, "fraud-detector", isvc or inference_service())]
    if with_monitor:
        resources.append(made("kubernetes:monitoring.coreos.com/v1:PodMonitor", "fraud-detector-monitor", monitor()))
    if with_drift:
        resources.append(made("kubernetes:batch/v1:CronJob", "fraud-detector-drift", drift_job()))
    return resources


# --- model-has-monitoring --------------------------------------------------------------------


def test_model_with_pod_monitor_and_drift_job_passes():
    """A model scraped by its PodMonitor and watched by its drift CronJob is compliant."""
    assert verdicts("model-has-monitoring", model_stack()) == []


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        (dict(with_monitor=False), "has no PodMonitor/ServiceMonitor selecting its pods"),
        (dict(with_drift=False), "has no drift CronJob labelled mlops.platform/model: fraud-detector"),
    ],
)
def test_model_missing_monitor_or_drift_job_fails(stack, expected):
    """Removing the monitor or the drift job is reported, naming the model."""
    [finding] = verdicts("model-has-monitoring", model_stack(**stack))
    assert expected in finding.message and finding.level == "mandatory"


def test_monitor_for_another_model_does_not_count():
    """A PodMonitor selecting a different model's pods does not monitor this one."""
    resources = model_stack(with_monitor=False) + [made("kubernetes:monitoring.coreos.com/v1:PodMonitor", "other", monitor("other-model"))]
    assert len(verdicts("model-has-monitoring", resources)) == 1


# --- model-has-rollback-path -----------------------------------------------------------------


def test_canary_or_versioned_artifact_is_a_rollback_path():
    """A canary passes; so does a versioned, immutable artifact without a canary."""
    assert verdicts("model-has-rollback-path", model_stack()) == []
    assert verdicts("model-has-rollback-path", model_stack(inference_service(canary=None))) == []


def test_moving_model_reference_without_canary_fails():
    """A `models:/name@alias` storageUri has no previous version to return to."""
    isvc = inference_service(canary=None)
    isvc["spec"]["predictor"]["model"]["storageUri"] = "models:/fraud-detector@champion"
    [finding] = verdicts("model-has-rollback-path", model_stack(isvc))
    assert "not an immutable artifact" in finding.message


def test_a_promoted_model_needs_a_versioned_artifact_like_one_without_canary():
    """At canaryTrafficPercent 100 only the new revision serves: the percent is no way back."""
    isvc = inference_service(canary=100)
    isvc["spec"]["predictor"]["model"]["storageUri"] = "models:/fraud-detector@champion"
    [finding] = verdicts("model-has-rollback-path", model_stack(isvc))
    assert "not an immutable artifact" in finding.message
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = 10
    assert verdicts("model-has-rollback-path", model_stack(isvc)) == []


# --- model-has-retraining-strategy -----------------------------------------------------------


def test_declared_retraining_passes_and_missing_trigger_fails():
    """on_dataset_drift with a webhook passes; a scheduled policy without a schedule fails."""
    assert verdicts("model-has-retraining-strategy", model_stack()) == []
    isvc = inference_service()
    isvc["metadata"]["annotations"]["mlops.platform/retraining-policy"] = "scheduled"
    [finding] = verdicts("model-has-retraining-strategy", model_stack(isvc))
    assert "no mlops.platform/retraining-schedule" in finding.message


# --- model-canary-in-prod --------------------------------------------------------------------


def test_canary_required_in_prod_only():
    """No canary: fine in dev, mandatory violation in prod."""
    no_canary = model_stack(inference_service(canary=None))
    assert verdicts("model-canary-in-prod", model_stack()) == []
    assert verdicts("model-canary-in-prod", no_canary, "dev") == []
    [finding] = verdicts("model-canary-in-prod", no_canary, "prod")
    assert "declares no canary in prod" in finding.message


def test_a_promoted_prod_model_keeps_its_canary_policy():
    """canaryTrafficPercent 100 is no canary: prod wants the declared gates on the object."""
    promoted = inference_service(canary=100)
    [finding] = verdicts("model-canary-in-prod", model_stack(promoted), "prod")
    assert "declares no canary in prod" in finding.message
    promoted["metadata"]["annotations"]["mlops.platform/canary-gates"] = '{"maxErrorRate":0.01}'
    assert verdicts("model-canary-in-prod", model_stack(promoted), "prod") == []


def test_rendered_prod_models_carry_their_gates(prod_rendering):
    """What the platform renders for prod satisfies the rule through the declared gates."""
    services = prod_rendering.by_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")
    assert services and all("mlops.platform/canary-gates" in s.inputs["metadata"]["annotations"] for s in services)


def test_canary_percent_in_raw_deployment_mode_fails_everywhere():
    """canaryTrafficPercent under RawDeployment is silently ignored by KServe, so it is reported."""
    isvc = inference_service()
    isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "RawDeployment"
    [finding] = verdicts("model-canary-in-prod", model_stack(isvc), "dev")
    assert "KServe ignores it" in finding.message


# --- gpu-pool-tainted / gpu-workload-on-gpu-pool ---------------------------------------------


def test_rendered_gpu_node_group_is_tainted_and_untainted_fails(prod_rendering):
    """The prod GPU node group carries the taint; without it the rule fails."""
    pool = resource(prod_rendering, NODE_GROUP, "nodes-gpu-l4")
    assert verdicts("gpu-pool-tainted", [pool]) == []
    [finding] = verdicts("gpu-pool-tainted", [mutated(pool, lambda i: i.pop("taints"))])
    assert "GPU pool nodes-gpu-l4 has no nvidia.com/gpu NoSchedule taint" in finding.message


def test_gke_gpu_pool_is_tainted_by_gke():
    """A GKE pool with a guest accelerator counts as tainted (GKE adds the taint itself)."""
    pool = made("gcp:container/nodePool:NodePool", "gpu", {"nodeConfig": {"machineType": "g2-standard-8",
                "guestAccelerators": [{"type": "nvidia-l4", "count": 1}]}})
    assert verdicts("gpu-pool-tainted", [pool]) == []


def test_gpu_model_on_the_tainted_pool_passes(prod_rendering):
    """A GPU predictor tolerating the taint and selecting the tainted pool's label is placed correctly."""
    resources = [resource(prod_rendering, NODE_GROUP, "nodes-gpu-l4"), made(ISVC, "embedder", inference_service("embedder", gpus=1))]
    assert verdicts("gpu-workload-on-gpu-pool", resources) == []


def test_gpu_model_selecting_a_cpu_pool_fails(prod_rendering):
    """Selecting a pool that is not a tainted GPU pool is reported."""
    isvc = inference_service("embedder", gpus=1)
    isvc["spec"]["predictor"]["nodeSelector"] = {"mlops.platform/pool": "cpu-serving"}
    resources = [resource(prod_rendering, NODE_GROUP, "nodes-gpu-l4"), resource(prod_rendering, NODE_GROUP, "nodes-cpu-serving"), made(ISVC, "embedder", isvc)]
    [finding] = verdicts("gpu-workload-on-gpu-pool", resources)
    assert "match no tainted GPU pool (nodes-gpu-l4)" in finding.message


def test_cpu_pod_tolerating_the_gpu_taint_fails(prod_rendering):
    """A Deployment that tolerates the GPU taint without asking for a GPU would hold GPU nodes."""
    deployment = mutated(resource(prod_rendering, "kubernetes:apps/v1:Deployment", "mlflow-server"),
                         lambda i: i["spec"]["template"]["spec"].update(tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}]))
    [finding] = verdicts("gpu-workload-on-gpu-pool", [deployment])
    assert "tolerates the nvidia.com/gpu taint but requests no GPU" in finding.message


# --- gpu-pool-size-capped / gpus-per-model-capped --------------------------------------------


def test_gpu_pool_within_cap_passes_and_above_fails(prod_rendering):
    """The prod GPU pool scales to 4 nodes: passes a cap of 4, fails a cap of 2."""
    pool = resource(prod_rendering, NODE_GROUP, "nodes-gpu-l4")
    assert verdicts("gpu-pool-size-capped", [pool], limits=Limits(max_gpu_pool_size=4)) == []
    [finding] = verdicts("gpu-pool-size-capped", [pool], limits=Limits(max_gpu_pool_size=2))
    assert "scales to 4 nodes, above the cap of 2" in finding.message


def test_cpu_pools_are_not_capped(prod_rendering):
    """The GPU cap does not apply to CPU pools (cpu-serving scales to 10)."""
    assert verdicts("gpu-pool-size-capped", [resource(prod_rendering, NODE_GROUP, "nodes-cpu-serving")], limits=Limits(max_gpu_pool_size=1)) == []


def test_gpus_per_model_cap():
    """Two GPUs per replica pass a cap of 2 and fail a cap of 1."""
    model = [made(ISVC, "embedder", inference_service("embedder", gpus=2))]
    assert verdicts("gpus-per-model-capped", copy.deepcopy(model), limits=Limits(max_gpus_per_model=2)) == []
    [finding] = verdicts("gpus-per-model-capped", model, limits=Limits(max_gpus_per_model=1))
    assert "requests 2 GPU(s) per replica, above the cap of 1" in finding.message


# --- team-quota-caps-gpus --------------------------------------------------------------------


@pytest.fixture(scope="module")
def team_objects() -> list:
    """The Namespace and ResourceQuota the TeamNamespaces component renders for a team without GPUs."""
    teams = json.dumps([{"name": "fraud", "groups": ["fraud-engineers"], "quota": {"cpu": "20", "memory": "40Gi", "gpus": 0}}])
    rendering = render(PROJECT_DIR, "dev", {"mlops:teams": teams})
    return [resource(rendering, "kubernetes:core/v1:Namespace", "teams-fraud"), resource(rendering, "kubernetes:core/v1:ResourceQuota", "teams-fraud-quota")]


def test_a_team_quota_with_gpus_passes_and_without_them_fails(team_objects):
    """The rendered quota names requests.nvidia.com/gpu (0 here); dropping it, or the quota, leaves the team's GPUs uncapped."""
    namespace, quota = team_objects
    assert quota.inputs["spec"]["hard"]["requests.nvidia.com/gpu"] == "0"
    assert verdicts("team-quota-caps-gpus", [namespace, quota]) == []
    uncapped = mutated(quota, lambda props: props["spec"]["hard"].pop("requests.nvidia.com/gpu"))
    for resources in ([namespace, uncapped], [namespace]):
        [finding] = verdicts("team-quota-caps-gpus", resources, environment="dev")
        assert "team namespace team-fraud (team fraud) has no ResourceQuota capping requests.nvidia.com/gpu" in finding.message
        assert finding.level == "mandatory"
