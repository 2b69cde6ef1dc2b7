"""The container KServe actually runs for each model: the predictor merged over its serving runtime.

KServe (pkg/utils/utils.go `MergeRuntimeContainers` and `MergePodSpec`, v0.20.0) builds the
predictor pod by strategic-merge-patching the InferenceService's container over the
ServingRuntime's container, and the predictor's pod spec over the runtime's. Strategic merge (k8s.io/
apimachinery strategicpatch with the `patchMergeKey` tags of k8s.io/api core/v1 types.go) merges
objects key by key, merges `env` by name, `volumeMounts` by mountPath and `volumes` by name, and
replaces other lists. `strategic_merge` below does exactly that for the fields the platform sets.

The old render declared `readOnlyRootFilesystem: false` on the runtimes and `true` on every
predictor: the merged container was read-only while MLServer wrote its metrics and environments
under its working directory. Each half looked fine; this test checks the merge.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlops.offline.render import Rendering, manifest_of, render
from tests.conftest import PROJECT_DIR

# k8s.io/api core/v1 types.go: the patchMergeKey of each list the platform sets.
MERGE_KEYS = {"env": "name", "volumeMounts": "mountPath", "volumes": "name", "ports": "containerPort"}
# Fields of a predictor's `model` that are KServe's, not the container's (ModelSpec minus v1.Container).
MODEL_SPEC_ONLY = ("modelFormat", "protocolVersion", "storageUri", "runtime")
# Where each server writes at start, as environment variables the merged container must point at
# scratch space (MLServer 1.7.1 settings.py defaults metrics_dir and environments_dir to cwd).
WRITTEN_PATHS = {
    "mlflow": ("MLSERVER_METRICS_DIR", "MLSERVER_ENVIRONMENTS_DIR", "HOME", "TMPDIR"),
    "sklearn": ("HOME", "TMPDIR"),
    "xgboost": ("HOME", "TMPDIR"),
}


def strategic_merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            merged[name] = strategic_merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        merge_key = MERGE_KEYS[key]
        merged_list = {item[merge_key]: item for item in base}
        for item in patch:
            merged_list[item[merge_key]] = strategic_merge(merged_list.get(item[merge_key], {}), item)
        return list(merged_list.values())
    return patch


@pytest.fixture(scope="module", params=[("dev", {}), ("prod", {}), ("prod", {"mlops:kserve.deploymentMode": "RawDeployment"})])
def rendering(request) -> Rendering:
    stack, overrides = request.param
    overrides = dict(overrides)
    if overrides:
        # RawDeployment needs a named stable side for the canary and HPA metrics.
        overrides |= {
            "mlops:models[0].canary.previousVersion": "6",
            "mlops:models[0].autoscaling.metric": "cpu",
            "mlops:models[1].autoscaling.metric": "cpu",
        }
    return render(PROJECT_DIR, stack, overrides)


def merged_predictors(rendering: Rendering) -> list[tuple[str, str, dict, list[dict]]]:
    """(model, format, merged container, merged pod volumes) of every predictor in the render."""
    manifests = [manifest_of(r) for r in rendering.resources if r.is_manifest]
    runtimes = {
        fmt["name"]: m["spec"] for m in manifests if m["kind"] == "ClusterServingRuntime" for fmt in m["spec"]["supportedModelFormats"]
    }
    result = []
    for manifest in manifests:
        if manifest["kind"] != "InferenceService":
            continue
        predictors = [manifest["spec"]["predictor"], *(c["predictor"] for c in manifest["spec"].get("canary", []))]
        for predictor in predictors:
            model_format = predictor["model"]["modelFormat"]["name"]
            runtime = runtimes[model_format]
            container = {k: v for k, v in predictor["model"].items() if k not in MODEL_SPEC_ONLY}
            merged = strategic_merge(runtime["containers"][0], container)
            volumes = strategic_merge(runtime.get("volumes", []), predictor.get("volumes", []), "volumes")
            result.append((manifest["metadata"]["name"], model_format, merged, volumes))
    return result


def test_every_merged_model_container_has_a_read_only_root_and_scratch_where_it_writes(rendering: Rendering) -> None:
    predictors = merged_predictors(rendering)
    assert predictors
    for model, model_format, container, volumes in predictors:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, model
        assert context["runAsNonRoot"] is True and context["allowPrivilegeEscalation"] is False, model
        assert context["runAsUser"] == 1000, model
        scratch = {v["name"] for v in volumes if "emptyDir" in v}
        writable = [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in scratch]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        for variable in WRITTEN_PATHS[model_format]:
            path = env.get(variable)
            assert path is not None, f"{model}: {variable} is not set, so the server writes to its read-only image"
            assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in writable), f"{model}: {variable}={path}"


def test_runtime_and_predictor_declare_the_same_security_context(rendering: Rendering) -> None:
    """One security context per container: neither half overrides the other."""
    manifests = [manifest_of(r) for r in rendering.resources if r.is_manifest]
    contexts = [m["spec"]["containers"][0]["securityContext"] for m in manifests if m["kind"] == "ClusterServingRuntime"]
    contexts += [m["spec"]["predictor"]["model"]["securityContext"] for m in manifests if m["kind"] == "InferenceService"]
    assert len(contexts) > 3
    assert all(context == contexts[0] for context in contexts)
