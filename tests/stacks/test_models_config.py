"""Config rules for model deployments: each refuses one thing with the key path and what is allowed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.config import ConfigError, load_stack_config
from stacks.config.rules import canary_replicas
from stacks.config.schema import ModelDeployment

# Large enough (8 vCPU, 32 GiB) for the 4-CPU, 16-GiB GPU models below to fit one node.
GPU_POOL = {"name": "gpu", "role": "gpu", "size": "large", "accelerator": "nvidia-l4", "acceleratorCount": 1, "minSize": 0, "maxSize": 4}
SYSTEM_POOL = {"name": "system", "role": "system", "minSize": 1, "maxSize": 2}


def model(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "fraud",
        "model": {"registeredModel": "fraud", "version": "7", "artifactUri": "s3://a/7"},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "metric": "cpu", "target": 70},
        "canary": {"trafficPercent": 10, "previousArtifactUri": "s3://a/6", "previousVersion": "6"},
        "monitoring": {"referenceDataUri": "s3://a/ref.parquet"},
        "retraining": {"webhook": "https://ci/retrain"},
    }
    document.update(overrides)
    return document


def load(models: list[dict[str, Any]], mode: str = "Serverless", pools: list[dict[str, Any]] | None = None):
    # GPU models need a cloud (the local foundation places nothing on GPU pools); gcp offers nvidia-l4.
    cloud = "gcp" if pools and GPU_POOL in pools else "local"
    # A GKE cluster's private endpoint needs a declared way in.
    cluster = {"mlops:cluster": json.dumps({"runnerCidrs": ["10.100.0.0/24"]})} if cloud == "gcp" else {}
    return load_stack_config(
        {
            **cluster,
            "mlops:cloud": cloud,
            "mlops:kserve": json.dumps({"deploymentMode": mode}),
            "mlops:models": json.dumps(models),
            "mlops:nodePools": json.dumps(pools or [SYSTEM_POOL]),
        }
    )


def problems(*args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load(*args, **kwargs)
    return [(p.path, p.message) for p in caught.value.problems]


def test_the_sample_model_is_valid_in_both_modes():
    """The baseline declaration loads in Serverless and RawDeployment."""
    assert load([model()]).models[0].name == "fraud"
    assert load([model()], "RawDeployment").models[0].canary.previous_version == "6"


@pytest.mark.parametrize("missing", ["previousArtifactUri", "previousVersion"])
def test_raw_deployment_canary_needs_the_stable_side(missing):
    """RawDeployment would ignore canaryTrafficPercent; the spec.canary form needs what stable serves."""
    canary = {"trafficPercent": 10, "previousArtifactUri": "s3://a/6", "previousVersion": "6"}
    del canary[missing]
    (found,) = problems([model(canary=canary)], "RawDeployment")
    assert found[0] == f"mlops:models[0].canary.{missing}" and "ignores canaryTrafficPercent" in found[1]


def test_serverless_canary_needs_no_stable_side():
    """In Serverless mode KServe keeps the previous revision itself."""
    assert load([model(canary={"trafficPercent": 10})]).models[0].canary.traffic_percent == 10


def test_raw_deployment_refuses_scale_to_zero():
    """minReplicas 0 needs Knative."""
    (found,) = problems([model(autoscaling={"minReplicas": 0, "maxReplicas": 2, "metric": "cpu"})], "RawDeployment")
    assert found[0] == "mlops:models[0].autoscaling.minReplicas" and "Serverless" in found[1]


@pytest.mark.parametrize("metric", ["rps", "concurrency"])
def test_raw_deployment_refuses_knative_metrics(metric):
    """concurrency/rps would be ignored by the HPA."""
    (found,) = problems([model(autoscaling={"metric": metric})], "RawDeployment")
    assert found == ("mlops:models[0].autoscaling.metric", "concurrency and rps are Knative metrics that RawDeployment mode ignores; use cpu or memory")


def test_raw_deployment_canary_version_must_differ_from_stable():
    """Stable and canary predictors are named after their versions."""
    (found,) = problems([model(canary={"trafficPercent": 5, "previousArtifactUri": "s3://a/6", "previousVersion": "7"})], "RawDeployment")
    assert found[0] == "mlops:models[0].canary.previousVersion"


def test_unresolved_artifact_is_refused_with_the_command_to_run():
    """A model without artifactUri names `mlops models resolve`."""
    (found,) = problems([model(model={"registeredModel": "fraud", "alias": "champion"})])
    assert found[0] == "mlops:models[0].model.artifactUri" and "mlops models resolve fraud --stack <stack> --alias champion" in found[1]


def test_canary_of_the_stable_artifact_is_refused():
    """A canary must serve something new."""
    (found,) = problems([model(canary={"trafficPercent": 10, "previousArtifactUri": "s3://a/7"})])
    assert found[0] == "mlops:models[0].canary.previousArtifactUri"


def gpu_model(max_replicas: int, percent: int | None, name: str = "embedder") -> dict[str, Any]:
    return model(
        name=name,
        resources={"cpu": "4", "memory": "16Gi", "gpus": 1, "gpuPool": "gpu"},
        autoscaling={"minReplicas": 1, "maxReplicas": max_replicas, "metric": "concurrency", "target": 4},
        canary={"trafficPercent": percent} if percent is not None else None,
    )


def test_gpu_canary_that_fits_next_to_stable_is_accepted():
    """3 stable + 1 canary GPUs fit a pool of 4 x 1."""
    assert load([gpu_model(3, 10)], pools=[SYSTEM_POOL, GPU_POOL]).models[0].canary is not None


def test_gpu_canary_beyond_the_pool_is_refused():
    """4 stable + 1 canary GPUs do not fit 4 x 1: the message gives every figure."""
    (found,) = problems([gpu_model(4, 10)], pools=[SYSTEM_POOL, GPU_POOL])
    assert found[0] == "mlops:models[0].canary"
    assert "holds 4 GPU(s)" in found[1] and "stable needs up to 4" in found[1] and "the canary 1 more" in found[1]


def test_gpu_canary_counts_other_models_on_the_pool():
    """Another model's GPUs on the same pool count against the canary's room."""
    (found,) = problems([gpu_model(2, 10), gpu_model(2, None, name="other")], pools=[SYSTEM_POOL, GPU_POOL])
    assert found[0] == "mlops:models[0].canary" and "other models on the pool 2" in found[1]


@pytest.mark.parametrize(("percent", "max_replicas", "min_replicas", "replicas"), [(10, 4, 1, 1), (50, 8, 1, 4), (10, 8, 3, 3), (0, 4, 0, 1)])
def test_canary_replicas_follow_the_traffic_share(percent, max_replicas, min_replicas, replicas):
    """Canary replicas: its share of maxReplicas, at least one and at least minReplicas."""
    declared = ModelDeployment.model_validate(
        model(autoscaling={"minReplicas": min_replicas, "maxReplicas": max_replicas}, canary={"trafficPercent": percent})
    )
    assert canary_replicas(declared) == replicas


def test_resolved_version_only_with_an_alias():
    """resolvedVersion records what an alias pointed at."""
    (found,) = problems([model(model={"registeredModel": "fraud", "version": "7", "resolvedVersion": "7", "artifactUri": "s3://a/7"})])
    assert found[0] == "mlops:models[0].model" and "only allowed with alias" in found[1]


@pytest.mark.parametrize("steps", [[50, 25], [10, 100], [0, 10], [10, 10]])
def test_canary_steps_increase_strictly_below_100(steps):
    """Promotion steps are strictly increasing percents in 1..99."""
    (found,) = problems([model(canary={"trafficPercent": 5, "steps": steps})])
    assert found[0] == "mlops:models[0].canary.steps" and "strictly increasing" in found[1]


def test_signature_is_recorded_as_typed_columns():
    """The signature schema takes named, typed columns; a tensor may be unnamed."""
    reference = {
        "registeredModel": "fraud",
        "version": "7",
        "artifactUri": "s3://a/7",
        "signature": {"inputs": [{"name": "amount", "type": "double"}], "outputs": [{"type": "tensor:float32"}]},
    }
    loaded = load([model(model=reference)]).models[0].model.signature
    assert loaded.inputs[0].name == "amount" and loaded.outputs[0].name is None
