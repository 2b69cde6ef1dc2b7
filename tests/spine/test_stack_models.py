"""Rewriting `mlops:models` in a stack file changes that block only and never writes an invalid config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mlops.stackops.stack_models import ModelNotDeclared, StackModels, replace_models_block
from stacks.config import ConfigError
from tests.conftest import PROJECT_DIR

MODEL = {"name": "m", "model": {"registeredModel": "m", "version": "1", "artifactUri": "s3://a/1"}}


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    return tmp_path


def test_only_the_models_block_changes(project):
    """Comments and every other key keep their exact text; the models parse back as written."""
    path = project / "Pulumi.dev.yaml"
    before = path.read_text()
    models = StackModels(project, "dev")
    declared = models.declarations()
    declared[0]["autoscaling"]["maxReplicas"] = 3
    models.write(declared)
    after = path.read_text()
    assert after.startswith(before[: before.index("  mlops:models:")])
    assert yaml.safe_load(after)["config"]["mlops:models"] == declared
    assert {k: v for k, v in yaml.safe_load(after)["config"].items() if k != "mlops:models"} == {
        k: v for k, v in yaml.safe_load(before)["config"].items() if k != "mlops:models"
    }


def test_a_block_in_the_middle_keeps_what_follows():
    """Keys after the models block, and the blank line before them, survive."""
    text = "# head\nconfig:\n  mlops:models:\n    - name: old\n\n  mlops:cloud: local # where\n"
    result = replace_models_block(text, [MODEL])
    assert result.endswith("\n\n  mlops:cloud: local # where\n") and result.startswith("# head\nconfig:\n  mlops:models:\n")
    assert yaml.safe_load(result)["config"] == {"mlops:models": [MODEL], "mlops:cloud": "local"}


def test_an_indentless_list_is_replaced_whole():
    """List items at the key's own indent (as PyYAML writes them) belong to the block: none survive
    after the new list."""
    text = "config:\n  mlops:models:\n  - name: old\n    format: mlflow\n  - name: older\n  mlops:cloud: local\n"
    result = replace_models_block(text, [MODEL])
    assert yaml.safe_load(result)["config"] == {"mlops:models": [MODEL], "mlops:cloud": "local"}


def test_a_missing_block_is_added_to_config():
    """A stack without models gets the key at the end of its config section."""
    result = replace_models_block("config:\n  mlops:cloud: local\nother: 1\n", [MODEL])
    assert yaml.safe_load(result) == {"config": {"mlops:cloud": "local", "mlops:models": [MODEL]}, "other": 1}


def test_an_invalid_result_is_not_written(project):
    """A declaration the schema refuses raises ConfigError and leaves the file as it was."""
    path = project / "Pulumi.dev.yaml"
    before = path.read_text()
    models = StackModels(project, "dev")
    declared = models.declarations()
    del declared[0]["monitoring"]
    with pytest.raises(ConfigError, match="without observability"):
        models.write(declared)
    assert path.read_text() == before


def test_unknown_model_names_the_declared_ones(project):
    """Asking for an undeclared model lists what the stack declares."""
    with pytest.raises(ModelNotDeclared, match="no model 'nope'.*declared: churn-classifier"):
        StackModels(project, "dev").declaration("nope")


def test_prod_takes_a_new_artifact_only_behind_a_canary():
    """`mlops models resolve` refuses to switch a prod model's artifact outright; dev may."""
    from mlops.stackops.models import RegistryError, ResolvedModel, refuse_unguarded_rollout

    project = PROJECT_DIR
    declaration = StackModels(project, "prod").declaration("fraud-detector")
    newer = ResolvedModel("fraud-detector", "8", "s3://mlops-prod-artifacts/12/new/artifacts/model", None)
    assert StackModels(project, "prod").environment() == "prod"
    with pytest.raises(RegistryError, match="add --canary PERCENT"):
        refuse_unguarded_rollout(declaration, newer, None, "prod")
    refuse_unguarded_rollout(declaration, newer, 10, "prod")
    refuse_unguarded_rollout(declaration, newer, None, "dev")
    same = ResolvedModel("fraud-detector", "7", declaration["model"]["artifactUri"], None)
    refuse_unguarded_rollout(declaration, same, None, "prod")
