"""`mlops canary promote`: the canary walks its declared steps, then promotion removes it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import yaml

from mlops.stackfiles import config_strings
from mlops.stackops import canary
from mlops.stackops.canary import next_traffic, promoted
from stacks.config import load_stack_config
from tests.conftest import PROJECT_DIR
from tests.spine import fake_pulumi

HANDWRITTEN = PROJECT_DIR / "tests" / "fixtures" / "stackfiles" / "Pulumi.prod.yaml"


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


FORCED = ("--force", "--reason", "metrics pipeline down during the incident; verified by hand")


def test_promote_edits_one_line_of_a_handwritten_stack_file(tmp_path: Path, capsys):
    """The CLI moves fraud-detector from 10 % to 25 % in a hand-written Pulumi.prod.yaml (comments at column 0,
    flow mappings, mixed quoting): that one value changes, every other byte stays, and the file is valid.
    Without a Prometheus here the gates are overridden (--force --reason, printed with the change);
    promotion on the gates' verdict runs against a real Prometheus in tests/runtime/test_canary_analysis.py."""
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(HANDWRITTEN, tmp_path / "Pulumi.prod.yaml")
    assert promote(tmp_path, "fraud-detector", *FORCED) == 0
    out = capsys.readouterr().out
    assert "canary 10% -> 25%" in out and "--force): metrics pipeline down during the incident; verified by hand" in out
    after = (tmp_path / "Pulumi.prod.yaml").read_text()
    assert after == HANDWRITTEN.read_text().replace("trafficPercent: 10   #", "trafficPercent: 25   #")
    load_stack_config(config_strings(yaml.safe_load(after)["config"]))


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


def test_promote_apply_runs_a_targeted_update(tmp_path: Path, capsys, monkeypatch):
    """--apply: the step is written, then `pulumi up` targets fraud-detector's resources only and sees 25 %."""
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(HANDWRITTEN, tmp_path / "Pulumi.prod.yaml")
    shutil.copy(PROJECT_DIR / "tests" / "fixtures" / "history" / "prod.json", tmp_path / "history.json")
    fake = fake_pulumi.install(tmp_path / "bin", tmp_path / "history.json")
    monkeypatch.setenv("PATH", str(fake.bin_dir))
    assert promote(tmp_path, "fraud-detector", "--apply", *FORCED) == 0
    out, err = capsys.readouterr()
    assert "canary 10% -> 25%; update 10 succeeded" in out and "Updating (prod)" in err
    (up,) = [call for call in fake.calls() if call["argv"][0] == "up"]
    targets = [up["argv"][i + 1] for i, arg in enumerate(up["argv"]) if arg == "--target"]
    assert targets and all("model-fraud-detector" in urn for urn in targets) and up["argv"][-1] == "--target-dependents"
    assert up["stackFile"] == (tmp_path / "Pulumi.prod.yaml").read_text()
    assert "trafficPercent: 25   #" in up["stackFile"]
