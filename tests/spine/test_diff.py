"""`mlops diff` shows what a change does to a stack, property by property, and nothing otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from mlops.offline.diff import diff_renderings
from tests.conftest import PROJECT_DIR

PROJECT_CONTENT = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "pyproject.toml", "stacks", "components", "mlops", "monitoring", "serving", "access")


def state(*resources: dict, outputs: dict | None = None) -> dict:
    return {"stack": "dev", "resources": list(resources), "outputs": outputs or {}}


def res(name: str, type_token: str = "kubernetes:apps/v1:Deployment", **inputs) -> dict:
    options = {"protect": False, "dependsOn": [], "provider": None, "retainOnDelete": False}
    return {"urn": f"urn:pulumi:dev::mlops::{type_token}::{name}", "type": type_token, "name": name,
            "parent": None, "custom": True, "inputs": inputs, "options": options}


def test_identical_renderings_have_no_changes():
    document = state(res("a", spec={"replicas": 1}))
    result = diff_renderings(document, json.loads(json.dumps(document)))
    assert not result.changed
    assert result.to_markdown() == "### Stack `dev`\n\nNo changes (1 resources unchanged).\n"


def test_creates_deletes_updates_and_replacements_are_told_apart():
    base = state(res("kept", spec={"replicas": 1}), res("gone"), res("renamed", metadata={"name": "old"}))
    head = state(res("kept", spec={"replicas": 3}), res("new"), res("renamed", metadata={"name": "new"}))
    result = diff_renderings(base, head)
    assert [(c.op, c.name) for c in result.changes] == [
        ("delete", "gone"), ("replace", "renamed"), ("update", "kept"), ("create", "new")
    ]
    update = next(c for c in result.changes if c.op == "update")
    assert [(p.path, p.before, p.after) for p in update.properties] == [("spec.replicas", 1, 3)]
    assert result.summary() == {"create": 1, "update": 1, "replace": 1, "delete": 1, "same": 0}


def test_markdown_lists_property_changes_in_a_table():
    base = state(res("isvc", "kubernetes:serving.kserve.io/v1beta1:InferenceService", spec={"predictor": {"canaryTrafficPercent": 10}}))
    head = state(res("isvc", "kubernetes:serving.kserve.io/v1beta1:InferenceService", spec={"predictor": {"canaryTrafficPercent": 25}}))
    markdown = diff_renderings(base, head).to_markdown()
    assert "| 0 | 1 | 0 | 0 | 0 |" in markdown
    assert "| `spec.predictor.canaryTrafficPercent` | `10` | `25` |" in markdown


def test_a_stack_new_at_head_is_all_creates():
    result = diff_renderings(None, state(res("a"), res("b")))
    assert [c.op for c in result.changes] == ["create", "create"]


@pytest.fixture
def project_repo(tmp_path):
    """A git repository holding a copy of the project, one commit deep."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in PROJECT_CONTENT:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy(source, repo / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], cwd=repo, check=True)
    return repo


def mlops(repo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlops", *args], cwd=repo, capture_output=True, text=True,
                          env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})


def test_diff_against_a_git_ref_shows_nothing_when_nothing_changed(project_repo):
    completed = mlops(project_repo, "diff", "--base", "HEAD", "--stack", "dev", "--exit-code")
    assert completed.returncode == 0, completed.stderr
    assert "No changes" in completed.stdout


def test_diff_against_a_git_ref_shows_a_config_change(project_repo):
    stack_file = project_repo / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  mlops:mlflow:\n    replicas: 3\n")
    completed = mlops(project_repo, "diff", "--base", "HEAD", "--stack", "dev", "--format", "json", "--exit-code")
    assert completed.returncode == 1, completed.stderr
    result = json.loads(completed.stdout)
    changed = {(c["op"], c["name"]): c["properties"] for c in result["changes"]}
    assert {"path": "spec.replicas", "before": 1, "after": 3} in changed[("update", "mlflow-server")]


def test_diff_rejects_an_unknown_ref(project_repo):
    completed = mlops(project_repo, "diff", "--base", "no-such-ref", "--stack", "dev")
    assert completed.returncode == 2
    assert "no-such-ref" in completed.stderr
