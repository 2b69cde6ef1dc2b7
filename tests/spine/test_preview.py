"""The offline pull-request preview: one Markdown comment with diff, verdicts, scan and cost."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest
import yaml

from mlops.offline import preview
from mlops.offline.security_scan import CHECKOV_ENV, checkov_executable
from tests.conftest import PROJECT_DIR

PROJECT_CONTENT = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "pyproject.toml",
                   "stacks", "components", "mlops", "policies", "monitoring", "serving", "access", "reference")
GPU_MODEL = {
    "name": "text-ranker",
    "model": {"registeredModel": "text-ranker", "version": "3", "artifactUri": "40/abc/artifacts/model"},
    "format": "mlflow",
    "resources": {"cpu": "2", "memory": "8Gi", "gpus": 1, "gpuPool": "gpu-t4"},
    # One stable replica and one canary replica fill the two-GPU pool.
    "autoscaling": {"minReplicas": 1, "maxReplicas": 1},
    "canary": {"trafficPercent": 10},
    "monitoring": {"referenceDataUri": "reference/text-ranker/v3.parquet"},
    "retraining": {"webhook": "https://ci.example.com/hooks/retrain/text-ranker", "policy": "on_dataset_drift"},
}


@pytest.fixture
def project_repo(tmp_path, monkeypatch):
    """A one-commit git repository holding a copy of the project (the pull request's base)."""
    monkeypatch.setenv(CHECKOV_ENV, str(checkov_executable(PROJECT_DIR)))
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in PROJECT_CONTENT:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__", "venv"))
        elif source.exists():
            shutil.copy(source, repo / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run([*git, *command], cwd=repo, check=True)
    return repo


def add_gpu_model(repo) -> None:
    """The pull request: a T4 pool for a new GPU model, and a smaller CPU serving pool."""
    path = repo / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    config = document["config"]
    pools = config["mlops:nodePools"]
    next(p for p in pools if p["name"] == "cpu-serving")["maxSize"] = 8
    pools.append({"name": "gpu-t4", "role": "gpu", "size": "medium", "accelerator": "nvidia-t4", "acceleratorCount": 1, "minSize": 0, "maxSize": 2})
    config["mlops:models"].append(GPU_MODEL)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def run_preview(repo, out) -> int:
    parser = argparse.ArgumentParser()
    preview.register(parser.add_subparsers())
    args = parser.parse_args(["preview", "--base", "HEAD", "--stack", "prod", "--out", str(out), "--project-dir", str(repo)])
    return args.func(args)


def test_preview_of_a_pr_adding_a_gpu_model(project_repo, tmp_path, monkeypatch):
    """One comment shows the new GPU node group, the changed pool size, the schema checks, verdicts,
    the checkov count and a positive cost delta."""
    monkeypatch.delenv("MLOPS_REFERENCE_DIR", raising=False)
    add_gpu_model(project_repo)
    out = tmp_path / "comment.md"
    code = run_preview(project_repo, out)
    text = out.read_text()
    assert text.count(preview.COMMENT_MARKER) == 1
    assert "## Stack `prod` (prod)" in text
    changes = text.split("### Changes")[1].split("### Policy verdicts")[0]
    assert "nodes-gpu-t4" in changes and "create" in changes
    assert "scalingConfig.maxSize" in changes
    schemas = text.split("### Schemas")[1].split("### Policy verdicts")[0]
    assert "Kubernetes objects checked against Kubernetes 1.35, the reference CRDs and chart defaults: no findings." in schemas
    verdicts = text.split("### Policy verdicts")[1].split("### Security scan")[0]
    assert "All guardrails pass." in verdicts or "mandatory," in verdicts
    assert "### Security scan" in text and "failed" in text.split("### Security scan")[1]
    cost = text.split("### Cost")[1]
    assert "nodes g4dn.xlarge" in cost
    max_delta = float(cost.split("at maximum scale")[0].rsplit("**", 2)[-2].split()[0].replace(",", ""))
    assert max_delta > 0
    assert (code == 1) == ("blocked by" in text.splitlines()[1])


def test_preview_without_changes_reports_no_resource_changes(project_repo, tmp_path, monkeypatch):
    """Previewing the base against itself shows no changes and a zero cost delta."""
    monkeypatch.delenv("MLOPS_REFERENCE_DIR", raising=False)
    out = tmp_path / "comment.md"
    run_preview(project_repo, out)
    text = out.read_text()
    assert "+0.00 $/month** at minimum scale, **+0.00 $/month** at maximum scale" in text
    # The copy's own reference/ is enough for the schema checks: nothing beside it, no MLOPS_REFERENCE_DIR.
    assert "the reference CRDs and chart defaults: no findings." in text.split("### Schemas")[1].split("### Policy verdicts")[0]
