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


def promote(tmp_path: Path, *arguments: str) -> int:
    parser = argparse.ArgumentParser()
    canary.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["canary", "promote", *arguments, "--stack", "prod", "--project-dir", str(tmp_path)])
    return args.func(args)


def test_forced_promote_edits_the_stack_file(tmp_path: Path, capsys):
    """--force --reason moves fraud-detector from 10 % to 25 % in Pulumi.prod.yaml, touches nothing
    else, and prints the reason with the change. (Promotion on the gates' verdict, against a real
    Prometheus: tests/runtime/test_canary_analysis.py.)"""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    assert promote(tmp_path, "fraud-detector", "--force", "--reason", "metrics pipeline down during the incident; verified by hand") == 0
    out = capsys.readouterr().out
    assert "canary 10% -> 25%" in out and "--force): metrics pipeline down during the incident; verified by hand" in out
    before = yaml.safe_load((PROJECT_DIR / "Pulumi.prod.yaml").read_text())["config"]
    after = yaml.safe_load((tmp_path / "Pulumi.prod.yaml").read_text())["config"]
    assert after["mlops:models"][0]["canary"]["trafficPercent"] == 25
    after["mlops:models"][0]["canary"]["trafficPercent"] = 10
    assert after == before


def test_promoting_a_promoted_model_is_refused(tmp_path: Path, capsys):
    """image-embedder is at 100 %: exit 2 with the way to start its next rollout."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    assert promote(tmp_path, "image-embedder") == 2 and "is promoted already" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "--prometheus URL is required to evaluate the canary's gates"),
        (("--force",), "--force needs --reason TEXT"),
        (("--force", "--reason", "  "), "--force needs --reason TEXT"),
    ],
)
def test_promote_without_a_verdict_or_a_reason_is_refused(tmp_path: Path, capsys, arguments, message):
    """Neither gates to evaluate nor a reason to override them: exit 2, the stack file untouched."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    assert promote(tmp_path, "fraud-detector", *arguments) == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "Pulumi.prod.yaml").read_bytes() == (PROJECT_DIR / "Pulumi.prod.yaml").read_bytes()
