"""Changing `mlops:models` in a stack file changes the changed models' text only, and never writes an invalid file.

`tests/fixtures/stackfiles/Pulumi.prod.yaml` is written the way people write stack files: comments
at column 0 inside the models list, `- name:` at the key's own indent, flow and block mappings side
by side, single, double and no quotes, blank lines inside a model. Each test diffs the file text.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlops.stackfiles import StackFileError, config_strings
from mlops.stackops.stack_models import ModelNotDeclared, StackModels
from mlops.stackops.stackfile_edit import edit_models
from stacks.config import ConfigError, load_stack_config
from tests.conftest import PROJECT_DIR

HANDWRITTEN = PROJECT_DIR / "tests" / "fixtures" / "stackfiles" / "Pulumi.prod.yaml"
FRAUD_START = "  - name: fraud-detector"
EMBEDDER_COMMENT = "# image-embedder runs on the GPU pool"


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(PROJECT_DIR / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    shutil.copy(HANDWRITTEN, tmp_path / "Pulumi.prod.yaml")
    return tmp_path


def models_in(text: str) -> list[dict]:
    return yaml.safe_load(text)["config"]["mlops:models"]


def assert_valid(text: str) -> None:
    load_stack_config(config_strings(yaml.safe_load(text)["config"]))


def write_changed(project: Path, stack_name: str, change: Callable[[list[dict]], None]) -> tuple[str, str, list[dict]]:
    """The file text before and after `StackModels.write` of the declarations as `change` leaves them."""
    path = project / f"Pulumi.{stack_name}.yaml"
    before = path.read_text()
    stack = StackModels(project, stack_name)
    wanted = stack.declarations()
    change(wanted)
    stack.write(wanted)
    return before, path.read_text(), wanted


def test_changing_the_first_model_keeps_every_byte_around_it(project):
    """fraud-detector back to version 6 at 0 %: the text before it and from the next model's comment on is
    unchanged; inside it, untouched lines keep their comments, quotes and flow style."""

    def rolled_back(models: list[dict]) -> None:
        models[0]["model"]["version"] = "6"
        models[0]["canary"]["trafficPercent"] = 0

    before, after, wanted = write_changed(project, "prod", rolled_back)
    head, tail = before[: before.index(FRAUD_START)], before[before.index(EMBEDDER_COMMENT) :]
    assert after.startswith(head) and after.endswith(tail)
    changed = after[len(head) : len(after) - len(tail)]
    original = before[len(head) : len(before) - len(tail)]
    assert changed == original.replace('version: "7"', 'version: "6"').replace(
        "trafficPercent: 10   #", "trafficPercent: 0    #"  # the comment keeps its column
    )
    assert models_in(after) == wanted
    assert_valid(after)


def test_changing_the_last_model_keeps_the_comment_before_it_and_the_end_of_the_file(project):
    """image-embedder (after a column-0 comment): the text before it and after it is unchanged; inside it,
    the untouched block, quotes and comments stay (its changed flow mapping may be re-laid out)."""

    def resized(models: list[dict]) -> None:
        models[1]["autoscaling"]["maxReplicas"] = 1
        models[1]["monitoring"]["payloadSampleRate"] = 0.1

    before, after, wanted = write_changed(project, "prod", resized)
    head = before[: before.index("  - name: image-embedder")]
    tail = before[before.index("      p99LatencyMs: 800\n") :]
    assert after.startswith(head) and after.endswith(tail)
    changed = after[len(head) : len(after) - len(tail)]
    for kept in ("    resources:\n      cpu: '4'\n", '      schedule: "0 3 * * 0"\n      policy: scheduled   # weekly\n'):
        assert kept in changed
    assert "      maxReplicas: 1\n" in changed and "payloadSampleRate: 0.1," in changed
    assert models_in(after) == wanted


def test_a_removed_key_and_a_new_key_change_only_their_lines(project):
    """Promotion drops the canary's previousArtifactUri and sets 100 %: those two lines change, no other."""

    def promoted(models: list[dict]) -> None:
        del models[0]["canary"]["previousArtifactUri"]
        models[0]["canary"]["trafficPercent"] = 100

    before, after, wanted = write_changed(project, "prod", promoted)
    assert "previousArtifactUri" not in after
    assert after.replace("trafficPercent: 100  #", "trafficPercent: 10   #") == "".join(
        line for line in before.splitlines(keepends=True) if "previousArtifactUri: s3://mlops-prod-artifacts/12/5d6e" not in line
    )
    assert models_in(after) == wanted


def test_an_appended_model_follows_the_last_one_in_the_file_style(project):
    """A model new to the stack goes after the last model, at its indent; the rest of the file is unchanged."""

    def added(models: list[dict]) -> None:
        models.append({**json.loads(json.dumps(models[0])), "name": "fraud-detector-eu"})

    before, after, wanted = write_changed(project, "prod", added)
    end = before.index("      p99LatencyMs: 800\n") + len("      p99LatencyMs: 800")
    assert after.startswith(before[:end] + "\n  - name: fraud-detector-eu\n    model:\n")
    assert after.endswith(before[end:])
    assert models_in(after) == wanted
    assert_valid(after)


def test_the_repository_dev_stack_changes_one_line(project):
    """The indented style of the repository's own stack files is kept as well."""
    old = StackModels(project, "dev").declarations()[0]["autoscaling"]["maxReplicas"]

    def scaled(models: list[dict]) -> None:
        models[0]["autoscaling"]["maxReplicas"] = old + 1

    before, after, _ = write_changed(project, "dev", scaled)
    assert after == before.replace(f"maxReplicas: {old}\n", f"maxReplicas: {old + 1}\n", 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A comment at column 0 between models (once made the old writer write later models twice).
        (
            "config:\n  mlops:models:\n    - name: a\n      v: 1\n# note\n    - name: b\n      v: 1\n",
            "config:\n  mlops:models:\n    - name: a\n      v: 2\n# note\n    - name: b\n      v: 1\n",
        ),
        # `- name:` at the key's own indent (once left the old items behind).
        (
            "config:\n  mlops:models:\n  - name: a\n    v: 1\n  - name: b\n    v: 1\n  mlops:cloud: aws\n",
            "config:\n  mlops:models:\n  - name: a\n    v: 2\n  - name: b\n    v: 1\n  mlops:cloud: aws\n",
        ),
        # A flow list of flow mappings: the changed one is rewritten inside its braces.
        (
            "config:\n  mlops:models: [{name: a, v: 1}, {name: b, v: 1}]  # two\n",
            "config:\n  mlops:models: [{name: a, v: 2}, {name: b, v: 1}]  # two\n",
        ),
    ],
)
def test_layouts_the_old_writer_broke(text, expected):
    """Only model `a` changes, whatever the layout around it."""
    current = models_in(text)
    wanted = json.loads(json.dumps(current))
    wanted[0]["v"] = 2
    assert edit_models(text, current, wanted) == expected


def test_reordering_or_removing_models_is_refused():
    """Commands change or append models; anything else would be a different kind of edit."""
    text = "config:\n  mlops:models:\n    - name: a\n    - name: b\n"
    with pytest.raises(StackFileError, match="not reorder"):
        edit_models(text, models_in(text), [{"name": "b"}, {"name": "a"}])
    with pytest.raises(StackFileError, match="not remove"):
        edit_models(text, models_in(text), [{"name": "a"}])


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
    assert [p.name for p in project.iterdir() if p.name.endswith(".tmp")] == []


def test_a_stack_file_that_is_not_utf8_is_one_clear_error(project):
    """Latin-1 bytes in the file: a StackFileError naming the file, not a traceback."""
    path = project / "Pulumi.prod.yaml"
    path.write_bytes(path.read_bytes().replace(b"# End of the stack file.", b"# Ende \xe4"))
    with pytest.raises(StackFileError, match="Pulumi.prod.yaml is not UTF-8"):
        StackModels(project, "prod").text()


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
