"""Stack files and `--config` values are read as Pulumi reads them, and what Pulumi refuses is
refused with the file and line (or the override) named, exit 2, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.project import EXIT_BAD_INPUT
from mlops.stackfiles import ProjectFiles, StackFileError, parse_overrides, path_value
from stacks.config import load_stack_config
from tests.conftest import PROJECT_DIR


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    return tmp_path


def render_stack(project: Path, text: str, capsys) -> tuple[int, str]:
    (project / "Pulumi.broken.yaml").write_text(text)
    code = main(["render", "--stack", "broken", "--project-dir", str(project), "--out", str(project / "out")])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "config:\n  mlops:cloud: local\n  mlops:environment: dev\n  mlops:cloud: aws\n",
            "mlops: Pulumi.broken.yaml:4: key 'mlops:cloud' is defined twice (first on line 2)",
        ),
        (
            "config:\n  mlops:local:\n    kubeContext: kind-a\n    kubeContext: kind-b\n",
            "mlops: Pulumi.broken.yaml:4: key 'kubeContext' is defined twice (first on line 3)",
        ),
        ("config:\n  mlops:cloud: local\n   oops: [\n", "mlops: Pulumi.broken.yaml:3: mapping values are not allowed here"),
        (
            "# a comment\nconfig:\n  - mlops:cloud\n",
            "mlops: Pulumi.broken.yaml:3: `config:` must be a mapping of NAMESPACE:KEY to values, got a list",
        ),
        ("- config\n", "mlops: Pulumi.broken.yaml:1: expected a mapping with a `config:` key, got a list"),
    ],
    ids=["duplicate-top-level-key", "duplicate-nested-key", "malformed", "config-not-a-map", "document-not-a-map"],
)
def test_a_broken_stack_file_is_one_line_with_file_and_line(project, capsys, text, message):
    code, err = render_stack(project, text, capsys)
    assert code == EXIT_BAD_INPUT
    assert err.strip() == message


# Pulumi's CLI, pkg/resource/config/map.go `adjustObjectValue` (pulumi/pulumi v3.x): with --path,
# "true"/"false" become booleans; text strconv.Atoi accepts becomes an integer unless it is longer
# than one character and starts with "0"; everything else (floats included) is stored as a string.
@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("true", True),
        ("false", False),
        ("17", 17),
        ("-3", -3),
        ("+5", 5),
        ("0", 0),
        ("0123", "0123"),
        ("1.33", "1.33"),
        ("1e3", "1e3"),
        ("True", "True"),
        ("9223372036854775808", "9223372036854775808"),  # beyond int64: Atoi fails, kept as text
        ("s3://bucket/model", "s3://bucket/model"),
        ('{"nvidia-l4": ["us-central1-a"]}', {"nvidia-l4": ["us-central1-a"]}),  # as `--path --json` stores it
    ],
)
def test_path_values_are_stored_as_pulumi_config_set_path_stores_them(text, stored):
    assert path_value(text) == stored
    assert type(path_value(text)) is type(stored)


def test_version_overrides_that_pulumi_accepts_are_accepted():
    """The issue's two refusals: Pulumi hands the program "1.33" (a string) and 17 (an integer)."""
    config = ProjectFiles(PROJECT_DIR).stack_config(
        "prod", parse_overrides(["mlops:cluster.kubernetesVersion=1.33", "mlops:database.postgresVersion=17"])
    )
    loaded = load_stack_config(config)
    assert (loaded.cluster.kubernetes_version, loaded.database.postgres_version) == ("1.33", "17")


def test_a_top_level_override_is_stored_as_text_like_pulumi_config_set():
    config = ProjectFiles(PROJECT_DIR).stack_config("dev", parse_overrides(["mlops:environment=prod"]))
    assert config["mlops:environment"] == "prod"


def test_an_override_that_starts_like_json_but_is_not_json_is_refused():
    with pytest.raises(StackFileError, match=r"--config value '\{nope' starts like JSON but does not parse"):
        ProjectFiles(PROJECT_DIR).stack_config("dev", parse_overrides(["mlops:local.kubeContext={nope"]))
