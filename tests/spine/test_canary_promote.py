"""`mlops canary promote`: the canary walks its declared steps, then promotion removes it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import yaml

from mlops.stackops import canary
from mlops.stackops.canary import next_traffic, promoted
from tests.conftest import PROJECT_DIR


@pytest.mark.parametrize(("current", "requested", "expected"), [(10, None, 25), (25, None, 50), (50, None, 100), (0, None, 10), (10, 40, 40), (10, 100, 100)])
def test_next_step(current, requested, expected):
    """The next declared step above the current percent, an explicit --step, or 100 after the last step."""
    assert next_traffic(current, [10, 25, 50], requested) == expected


@pytest.mark.parametrize("requested", [10, 5, 101])
def test_step_must_move_forward(requested):
    """--step at or below the current percent, or above 100, is refused."""
    with pytest.raises(ValueError, match="must be above the current 10%"):
        next_traffic(10, [10, 25, 50], requested)


def test_promotion_drops_the_stable_side_and_keeps_the_rollout_policy():
    """At 100 % the previous artifact goes; artifactUri (the new version) and the gates stay for the next rollout."""
    gates = {"maxErrorRate": 0.01}
    declaration = {
        "name": "m",
        "model": {"artifactUri": "s3://new"},
        "canary": {"trafficPercent": 50, "previousArtifactUri": "s3://old", "previousVersion": "6", "gates": gates},
    }
    updated, current, target = promoted(declaration, [10, 25, 50], None)
    assert (current, target) == (50, 100)
    assert updated == {"name": "m", "model": {"artifactUri": "s3://new"}, "canary": {"trafficPercent": 100, "gates": gates}}
    assert declaration["canary"]["trafficPercent"] == 50


def test_promote_edits_the_stack_file(tmp_path: Path, capsys):
    """The CLI moves fraud-detector from 10 % to 25 % in Pulumi.prod.yaml and touches nothing else."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    parser = argparse.ArgumentParser()
    canary.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["canary", "promote", "fraud-detector", "--stack", "prod", "--project-dir", str(tmp_path)])
    assert args.func(args) == 0
    assert "canary 10% -> 25%" in capsys.readouterr().out
    before = yaml.safe_load((PROJECT_DIR / "Pulumi.prod.yaml").read_text())["config"]
    after = yaml.safe_load((tmp_path / "Pulumi.prod.yaml").read_text())["config"]
    assert after["mlops:models"][0]["canary"]["trafficPercent"] == 25
    after["mlops:models"][0]["canary"]["trafficPercent"] = 10
    assert after == before


def test_promoting_a_promoted_model_is_refused(tmp_path: Path, capsys):
    """image-embedder is at 100 %: exit 2 with the way to start its next rollout."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    parser = argparse.ArgumentParser()
    canary.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["canary", "promote", "image-embedder", "--stack", "prod", "--project-dir", str(tmp_path)])
    assert args.func(args) == 2 and "is promoted already" in capsys.readouterr().err
