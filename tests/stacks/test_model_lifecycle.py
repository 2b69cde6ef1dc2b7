"""The declared lifecycle of the committed stacks' models, rendered through the real program:
prod's image-embedder (scheduled) gets a training CronJob on its GPU pool, fraud-detector (dataset
drift) a Job template with the Role that lets its drift job create it, dev's churn-classifier a Job
template and a batch scoring CronJob. Every rendered Job validates against the Kubernetes schemas,
and the variables it sets are exactly the ones its entrypoint reads (training/config.py,
batch/config.py), with every required one present.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from batch.config import SETTINGS as BATCH_SETTINGS
from components.declarations import TRAINING_METRICS
from components.model.training import EMBEDDED_MANIFEST_ANNOTATION as TEMPLATE_ANNOTATION
from components.model.training import JOB_TEMPLATE_PATH
from mlops.offline.render import RenderedResource, Rendering, manifest_of, render
from mlops.offline.validate import EMBEDDED_MANIFEST_ANNOTATION, ReferenceData, validate_manifest, validate_rendering
from monitoring.drift_job.config import load_config
from monitoring.drift_job.retrain import job_from_template
from tests.conftest import PROJECT_DIR, REFERENCE_DIR
from training.config import SETTINGS as TRAINING_SETTINGS
from training.evaluation import METRICS

# Read by the libraries the entrypoints use, not by their own settings.
PLATFORM_VARIABLES = {
    *("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"),
    *("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
}


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    return ReferenceData(REFERENCE_DIR)


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod")


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(PROJECT_DIR, "dev")


def objects(rendering: Rendering, kind: str) -> dict[str, tuple[RenderedResource, dict[str, Any]]]:
    found = {}
    for resource in rendering.resources:
        if resource.is_manifest and manifest_of(resource)["kind"] == kind:
            found[manifest_of(resource)["metadata"]["name"]] = (resource, manifest_of(resource))
    return found


def job_template(rendering: Rendering, model: str) -> dict[str, Any]:
    _, config_map = objects(rendering, "ConfigMap")[f"{model}-training-job"]
    return json.loads(config_map["data"]["job.json"])


def container_env(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["containers"]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def assert_env_is_what_the_entrypoint_reads(env: dict[str, Any], settings) -> None:
    read = {setting.variable for setting in settings}
    assert set(env) - PLATFORM_VARIABLES <= read, f"set but never read: {set(env) - PLATFORM_VARIABLES - read}"
    assert {s.variable for s in settings if s.required} <= set(env)


def test_scheduled_image_embedder_trains_on_its_gpu_pool(prod, reference):
    """A CronJob on the declared schedule, one GPU on the gpu-l4 pool, the training-job account."""
    resource, cron = objects(prod, "CronJob")["image-embedder-training"]
    assert validate_manifest(resource, cron, reference, "1.33") == []
    assert cron["spec"]["schedule"] == "0 3 * * 0" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1" and pod["nodeSelector"] == {"mlops.platform/pool": "gpu-l4"}
    assert pod["serviceAccountName"] == "training-job" and container["command"] == ["python", "-m", "training"]
    env = container_env(pod)
    assert_env_is_what_the_entrypoint_reads(env, TRAINING_SETTINGS)
    assert (env["TRAINING_MODEL"], env["TRAINING_TRIGGER"], env["TRAINING_METRIC"]) == ("image-embedder", "schedule", "accuracy")


def test_drifting_fraud_detector_gets_a_job_template_its_drift_job_may_create(prod, reference):
    """The template is a valid Job; the drift job mounts it, passes its path, gets an API token, and
    its Role grants creating Jobs in the namespace and nothing else."""
    template = job_template(prod, "fraud-detector")
    job = job_from_template(template, "fraud-detector/7/2026-12-01T00:00:00Z/2026-12-02T00:00:00Z")
    resource, _ = objects(prod, "ConfigMap")["fraud-detector-training-job"]
    assert validate_manifest(resource, job, reference, "1.33") == []
    assert len(job["metadata"]["name"]) <= 63 and job["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2, 3, 4, 9]
    env = container_env(job["spec"]["template"]["spec"])
    assert_env_is_what_the_entrypoint_reads(env, TRAINING_SETTINGS)
    assert (env["TRAINING_SERVED_VERSION"], env["TRAINING_METRIC"], env["TRAINING_MARGIN"]) == ("7", "f1", "0.005")
    assert env["TRAINING_LABELS"].endswith("-artifacts/labels/fraud-detector/") and env["TRAINING_PAYLOAD_ROOT"].endswith("/payloads")
    assert env["TRAINING_TRIGGER"].startswith("fraud-detector/7/")

    _, drift = objects(prod, "CronJob")["fraud-detector-drift"]
    pod = drift["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is True
    assert {"name": "training-job", "configMap": {"name": "fraud-detector-training-job"}} in pod["volumes"]
    config = load_config(container["args"], {})
    assert config.retrain_job_template == JOB_TEMPLATE_PATH and config.retrain_policy.value == "on_dataset_drift"

    _, role = objects(prod, "Role")["fraud-detector-training-job"]
    assert role["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]
    _, binding = objects(prod, "RoleBinding")["fraud-detector-training-job"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "drift-job", "namespace": "mlops-serving"}]


def test_models_without_drift_triggered_jobs_keep_the_drift_pod_tokenless(prod):
    """image-embedder retrains on schedule: its drift job neither mounts a template nor gets a token."""
    _, drift = objects(prod, "CronJob")["image-embedder-drift"]
    pod = drift["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and "--retrain-job-template" not in pod["containers"][0]["args"]


def test_dev_points_retraining_at_what_the_platform_deploys(dev, reference):
    """Dev's churn-classifier: no webhook to a service nobody runs; a Job template and its Role."""
    _, service = objects(dev, "InferenceService")["churn-classifier"]
    annotations = service["metadata"]["annotations"]
    assert "mlops.platform/retraining-webhook" not in annotations
    assert annotations["mlops.platform/retraining-job"] in objects(dev, "ConfigMap")
    assert "churn-classifier-training-job" in objects(dev, "Role")


def test_batch_scoring_loads_the_served_version_and_writes_under_batch_output(dev, reference):
    """Dev's churn-classifier declares batch: a valid CronJob running `python -m batch` as batch-job
    with version 1 (what the InferenceService serves) and prefixes in the payload bucket."""
    resource, cron = objects(dev, "CronJob")["churn-classifier-batch"]
    assert validate_manifest(resource, cron, reference, "1.33") == []
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "batch-job" and pod["containers"][0]["command"] == ["python", "-m", "batch"]
    env = container_env(pod)
    assert_env_is_what_the_entrypoint_reads(env, BATCH_SETTINGS)
    assert (env["BATCH_MODEL"], env["BATCH_MODEL_VERSION"], env["BATCH_CHUNK_ROWS"]) == ("churn-classifier", "1", "50000")
    assert env["BATCH_INPUT"].endswith("/tables/churn-scoring") and env["BATCH_OUTPUT"].endswith("/batch-output/churn-classifier")


def test_the_schema_offers_the_metrics_the_trainer_knows():
    """components.declarations.TRAINING_METRICS and training.evaluation.METRICS agree, task by task."""
    assert {task: set(names) for task, names in TRAINING_METRICS.items()} == {
        task: {name for name, metric in METRICS.items() if metric.task == task} for task in TRAINING_METRICS
    }


def test_validate_checks_the_job_template_before_the_cluster_sees_it(dev, reference):
    """The drift job hands the template to the API server only on drift: `mlops validate` checks it
    now, and a template the server would refuse is a finding naming the field."""
    resource, config_map = objects(dev, "ConfigMap")["churn-classifier-training-job"]
    assert config_map["metadata"]["annotations"][EMBEDDED_MANIFEST_ANNOTATION] == "job.json"
    assert EMBEDDED_MANIFEST_ANNOTATION == TEMPLATE_ANNOTATION
    assert validate_rendering(Rendering(dev.project, dev.stack, dev.config, [resource]), reference, "1.33") == []
    template = json.loads(config_map["data"]["job.json"])
    template["spec"]["backoffLimit"] = "twice"
    broken = dataclasses.replace(resource, inputs={**resource.inputs, "data": {"job.json": json.dumps(template)}})
    (finding,) = validate_rendering(Rendering(dev.project, dev.stack, dev.config, [broken]), reference, "1.33")
    assert finding.path == "spec.backoffLimit" and "'twice' is not of type 'integer'" in finding.message
