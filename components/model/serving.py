"""The KServe InferenceService of one declared model: pure builders, dict in, dict out.

Mode, and why: the platform serves in KServe's Serverless (Knative) mode. It is the mode in which
`canaryTrafficPercent` splits traffic (RawDeployment silently ignores it, kserve #5335, #4074),
in which each rollout is a Knative revision whose queue-proxy reports the request metrics the
canary analysis and SLO rules read, and in which models can scale to zero. A canary is the
declared artifact served as the latest revision with `canaryTrafficPercent: N`; the stable
revision keeps the rest. Rollback is `trafficPercent: 0`; promotion drops the canary section,
rendered as `canaryTrafficPercent: 100` (KServe treats 100 and an absent field alike: all traffic
to the latest revision), so every Serverless InferenceService states its split explicitly.

RawDeployment stays available (`mlops:kserve.deploymentMode`) with KServe 0.20's `spec.canary`:
the stable predictor is named after the previous version and serves the previous artifact, the
canary entry is named after the new version; promotion retargets, rollback drops the entry.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import pulumi

from components import workloads
from components.interfaces import GpuPlacement
from components.declarations import ModelDeployment, ModelResources

MODEL_LABEL = "mlops.platform/model"
VERSION_LABEL = "mlops.platform/model-version"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
RETRAINING_POLICY_ANNOTATION = "mlops.platform/retraining-policy"
RETRAINING_WEBHOOK_ANNOTATION = "mlops.platform/retraining-webhook"
RETRAINING_SCHEDULE_ANNOTATION = "mlops.platform/retraining-schedule"
RETRAINING_JOB_ANNOTATION = "mlops.platform/retraining-job"
GPU_RESOURCE = "nvidia.com/gpu"
# KServe's name for the model server container (the CRD requires it in spec.canary predictors).
MODEL_CONTAINER = "kserve-container"
# A GPU model may wait for a node to scale up from zero and then pull a large image and model.
READY_TIMEOUT_SECONDS = 1200
PROMOTED_PERCENT = 100
CANARY_GATES_ANNOTATION = "mlops.platform/canary-gates"

DeploymentMode = Literal["Serverless", "RawDeployment"]



def predictor_name(version: str) -> str:
    """Name of a RawDeployment predictor serving `version` (KServe ties the name to the model)."""
    return "v" + re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")


def version_metadata(model: str, version: str) -> dict[str, str]:
    """Pod labels and annotations telling revisions apart by version (the metrics and payload contract)."""
    return {MODEL_LABEL: model, VERSION_LABEL: version}


def model_resources(model: ModelDeployment) -> dict[str, Any]:
    return pod_resources(model.resources)


def pod_resources(declared: ModelResources) -> dict[str, Any]:
    """Requests and limits of a model's pod (serving, training, batch), GPUs included."""
    resources = workloads.resources(declared.cpu, declared.memory)
    if declared.gpus:
        for side in ("requests", "limits"):
            resources[side][GPU_RESOURCE] = str(declared.gpus)
    return resources


def _pod(
    model: ModelDeployment,
    version: str,
    artifact_uri: str,
    account: pulumi.Input[str],
    collector_url: pulumi.Input[str],
    placement: GpuPlacement | None,
) -> dict[str, Any]:
    """What every predictor of the model shares, stable or canary: pod, container and logger."""
    identity = version_metadata(model.name, version)
    pod: dict[str, Any] = {
        "serviceAccountName": account,
        "labels": identity,
        # The inference logger forwards these pod annotations with every event, so the
        # collector files payloads under the version that actually answered.
        "annotations": identity,
        "logger": {"mode": "all", "url": collector_url, "metadataAnnotations": [MODEL_LABEL, VERSION_LABEL]},
        "securityContext": workloads.RESTRICTED_POD_SECURITY,
        "model": {
            "name": MODEL_CONTAINER,
            "modelFormat": {"name": model.format},
            "protocolVersion": model.protocol,
            "storageUri": artifact_uri,
            "resources": model_resources(model),
            # The same context the runtime's container declares (KServe merges the two; see
            # components/platform/kserve.py): the runtime mounts the scratch emptyDir servers write to.
            "securityContext": workloads.restricted_container_security(run_as_user=workloads.MODEL_SERVER_USER),
        },
    }
    if placement is not None:
        pod["nodeSelector"] = dict(placement.node_selector)
        pod["tolerations"] = [dict(t) for t in placement.tolerations]
    return pod


def _autoscaling(model: ModelDeployment) -> dict[str, Any]:
    scaling = model.autoscaling
    return {
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "scaleMetric": scaling.metric,
        "scaleTarget": scaling.target,
    }


def inference_service_spec(
    model: ModelDeployment,
    mode: DeploymentMode,
    account: pulumi.Input[str],
    collector_url: pulumi.Input[str],
    placement: GpuPlacement | None,
) -> dict[str, Any]:
    if model.model.artifact_uri is None:
        raise ValueError(f"model {model.name!r} has no model.artifactUri; run `mlops models resolve {model.name}` first")
    version = model.model.deployed_version
    canary = model.canary
    if mode == "Serverless":
        predictor = {
            **_pod(model, version, model.model.artifact_uri, account, collector_url, placement),
            **_autoscaling(model),
            "canaryTrafficPercent": canary.traffic_percent if canary is not None else PROMOTED_PERCENT,
        }
        return {"predictor": predictor}
    if canary is None or canary.traffic_percent == PROMOTED_PERCENT:
        stable = _pod(model, version, model.model.artifact_uri, account, collector_url, placement)
        return {"predictor": {"name": predictor_name(version), **stable, **_autoscaling(model)}}
    if canary.previous_artifact_uri is None or canary.previous_version is None:
        raise ValueError(
            f"model {model.name!r}: a RawDeployment canary needs canary.previousArtifactUri and canary.previousVersion"
        )
    stable = _pod(model, canary.previous_version, canary.previous_artifact_uri, account, collector_url, placement)
    new = _pod(model, version, model.model.artifact_uri, account, collector_url, placement)
    return {
        "predictor": {"name": predictor_name(canary.previous_version), **stable, **_autoscaling(model)},
        # Canary replicas follow the traffic share; KServe refuses autoscaling fields here.
        "canary": [{"trafficPercent": canary.traffic_percent, "predictor": {"name": predictor_name(version), **new}}],
    }


def job_template_name(model: ModelDeployment) -> str:
    """The ConfigMap holding the model's training Job template (components.model.training)."""
    return f"{model.name}-training-job"


def inference_service_metadata(model: ModelDeployment, mode: DeploymentMode, namespace: str) -> dict[str, Any]:
    annotations = {
        DEPLOYMENT_MODE_ANNOTATION: mode,
        # Pulumi waits for the Ready condition, so a model that cannot load fails `pulumi up`.
        "pulumi.com/waitFor": "condition=Ready",
        "pulumi.com/timeoutSeconds": str(READY_TIMEOUT_SECONDS),
        "mlops.platform/registered-model": model.model.registered_model,
        RETRAINING_POLICY_ANNOTATION: model.retraining.policy,
    }
    if mode == "Serverless":
        # latest-/prev- hosts let the canary and the stable revision be called directly.
        annotations[TAG_ROUTING_ANNOTATION] = "true"
    if model.canary is not None:
        # The declared rollout policy, on the object: what `mlops canary analyze` judges a new version by.
        annotations[CANARY_GATES_ANNOTATION] = json.dumps(
            model.canary.gates.model_dump(by_alias=True, mode="json"), sort_keys=True, separators=(",", ":")
        )
    if model.retraining.webhook is not None:
        annotations[RETRAINING_WEBHOOK_ANNOTATION] = model.retraining.webhook
    if model.retraining.schedule is not None:
        annotations[RETRAINING_SCHEDULE_ANNOTATION] = model.retraining.schedule
    if model.retraining.job is not None and model.retraining.policy != "scheduled":
        # The ConfigMap holding the training Job the drift job creates (components.model.training).
        annotations[RETRAINING_JOB_ANNOTATION] = job_template_name(model)
    return {
        "name": model.name,
        "namespace": namespace,
        "labels": {**workloads.labels(model.name, "model-server"), MODEL_LABEL: model.name},
        "annotations": annotations,
    }
