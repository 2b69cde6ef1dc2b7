"""`make local-up` / `local-down` (scripts/local/local_platform.py) as far as it runs without Docker:
the plan it prints, its argument handling, and the stack config it hands `pulumi up`, which must
be one the platform's config schema accepts and which never touches the repository's own files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stacks.config import load_stack_config
from tests.conftest import PROJECT_DIR, load_script

SCRIPT = PROJECT_DIR / "scripts" / "local" / "local_platform.py"
TRAINED_V1 = {
    "registeredModel": "churn-classifier",
    "version": "1",
    "artifactUri": "s3://mlflow-artifacts/1/models/m-1/artifacts",
    "referenceDataUri": "s3://mlflow-artifacts/reference/churn-classifier/v1.parquet",
}
TRAINED_V2 = {**TRAINED_V1, "version": "2", "artifactUri": "s3://mlflow-artifacts/1/models/m-2/artifacts"}


@pytest.fixture
def local_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    module = load_script("scripts/local/local_platform.py")
    monkeypatch.setattr(module, "PULUMI_PROJECT_DIR", tmp_path / "pulumi")
    return module


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=60)


def test_dry_run_up_prints_every_step_in_order_with_its_duration():
    completed = run("--dry-run", "up")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    steps = [line.removeprefix("==> ") for line in lines if line.startswith("==> ")]
    assert steps == [
        "tools: kind, Pulumi CLI, docker, kubectl",
        "kind cluster mlops (kindest/node:v1.36.1)",
        "runtime image ghcr.io/mlops-platform/mlops-runtime:0.1.0: build and load into kind",
        "pulumi up: the platform, no model yet",
        "demo model churn-classifier: train, register, write its reference sample",
        "pulumi up: InferenceService churn-classifier serving the demo model",
    ]
    assert [re.sub(r": \d+\.\d s$", "", line.removeprefix("<== ")) for line in lines if line.startswith("<== ")] == steps
    commands = [line.removeprefix("  $ ") for line in lines if line.startswith("  $ ")]
    assert any(c.endswith("--image kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5 --wait 180s") for c in commands)
    assert "docker build --file images/runtime.Dockerfile --tag ghcr.io/mlops-platform/mlops-runtime:0.1.0 ." in commands
    assert sum(" up --yes --skip-preview --stack dev " in c for c in commands) == 2
    assert commands[-1] == "kubectl --context kind-mlops -n mlops-serving wait --for=condition=Ready inferenceservice/churn-classifier --timeout=900s"
    assert lines[-1].startswith("up (dry run) done in ")


def test_kind_is_pinned_to_a_release_that_enforces_network_policies(local_platform):
    """kind enforces NetworkPolicies from v0.24.0 on (kindnetd with kube-network-policies)."""
    major, minor, patch = map(int, local_platform.KIND_VERSION.removeprefix("v").split("."))
    assert (major, minor) >= (0, 24)
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", local_platform.KIND_NODE_IMAGE)


def test_dry_run_down_deletes_the_cluster_and_the_local_state():
    completed = run("--dry-run", "down")
    assert completed.returncode == 0, completed.stderr
    assert "build/local/bin/kind delete cluster --name mlops" in completed.stdout
    assert f"  - remove {PROJECT_DIR / 'build' / 'local'}" in completed.stdout


@pytest.mark.parametrize("percent", ["0", "100", "ten"])
def test_a_canary_percent_outside_1_to_99_exits_2_naming_it(percent):
    completed = run("canary", "--percent", percent)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1] == f"local_platform.py canary: error: argument --percent: {percent!r} is not a whole number from 1 to 99"


def _stack_config(project_dir: Path) -> dict:
    return yaml.safe_load((project_dir / "Pulumi.dev.yaml").read_text())["config"]


def _as_pulumi_config(config: dict) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def test_the_generated_project_runs_this_repository_with_the_trained_model(local_platform, tmp_path):
    repository_files = {name: (PROJECT_DIR / name).read_bytes() for name in ("Pulumi.yaml", "Pulumi.dev.yaml")}
    declared = local_platform.declared_model()

    local_platform.write_pulumi_project([local_platform.with_trained(declared, TRAINED_V1)])

    project = yaml.safe_load((tmp_path / "pulumi" / "Pulumi.yaml").read_text())
    assert Path(project["main"]) == PROJECT_DIR / "stacks"
    assert Path(project["runtime"]["options"]["virtualenv"]) == PROJECT_DIR / ".venv"
    generated = _stack_config(tmp_path / "pulumi")
    original = _stack_config(PROJECT_DIR)
    assert {k: v for k, v in generated.items() if k != "mlops:models"} == {k: v for k, v in original.items() if k != "mlops:models"}
    config = load_stack_config(_as_pulumi_config(generated))
    [model] = config.models
    assert (model.model.version, model.model.artifact_uri) == ("1", TRAINED_V1["artifactUri"])
    assert model.monitoring.reference_data_uri == TRAINED_V1["referenceDataUri"]
    assert {name: (PROJECT_DIR / name).read_bytes() for name in repository_files} == repository_files


def test_the_canary_config_sends_the_percent_to_the_new_version_and_keeps_the_salt(local_platform, tmp_path):
    declared = local_platform.declared_model()
    local_platform.write_pulumi_project([])
    stack_file = tmp_path / "pulumi" / "Pulumi.dev.yaml"
    stack_file.write_text("encryptionsalt: v1:abc:v1:def:ghi\n" + stack_file.read_text())

    local_platform.write_pulumi_project([local_platform.with_canary(declared, TRAINED_V1, TRAINED_V2, 10)])

    assert yaml.safe_load(stack_file.read_text())["encryptionsalt"] == "v1:abc:v1:def:ghi"
    [model] = load_stack_config(_as_pulumi_config(_stack_config(tmp_path / "pulumi"))).models
    assert (model.model.version, model.canary.traffic_percent) == ("2", 10)
    assert (model.canary.previous_version, model.canary.previous_artifact_uri) == ("1", TRAINED_V1["artifactUri"])
