"""`mlops rollback`: restores exactly one model's previous declaration from recorded stack history.

The histories under tests/fixtures/history are in the shape `pulumi stack history --json` prints
(newest first; config values as {value, objectValue, secret}; secrets without a value), with
failed, in-progress and refresh entries that must never be rolled back to.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import yaml

from mlops.stackops import rollback
from mlops.stackops.rollback import RollbackError, parse_history, plan_rollback
from tests.conftest import PROJECT_DIR

HISTORY_DIR = PROJECT_DIR / "tests" / "fixtures" / "history"


def history(name: str) -> list[rollback.Update]:
    return parse_history(json.loads((HISTORY_DIR / name).read_text()))


def stack_models() -> list[dict]:
    return yaml.safe_load((HISTORY_DIR / "Pulumi.prod.yaml").read_text())["config"]["mlops:models"]


def recorded(update: int, model: str) -> dict:
    (entry,) = [e for e in json.loads((HISTORY_DIR / "prod.json").read_text()) if e["version"] == update]
    return next(m for m in entry["config"]["mlops:models"]["objectValue"] if m["name"] == model)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(HISTORY_DIR / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    return tmp_path


def run(project: Path, *argv: str, capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    rollback.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["rollback", *argv, "--stack", "prod", "--project-dir", str(project)])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fixture", ["prod.json", "prod-text-values.json"])
def test_finds_the_last_successful_update_where_the_model_differed(fixture):
    """fraud-detector: updates 6 and 5 match today, 4 failed, so update 3's declaration is restored."""
    plan = plan_rollback(history(fixture), stack_models(), "fraud-detector")
    assert plan.from_update == 3
    assert plan.restored == recorded(3, "fraud-detector")
    assert plan.restored["model"]["version"] == "6" and plan.restored["canary"] == {"trafficPercent": 100}


def test_failed_in_progress_and_refresh_entries_are_never_targets():
    """Updates 9 (in progress), 8 (failed) and 7 (a refresh) differ from today but are skipped."""
    plan = plan_rollback(history("prod.json"), stack_models(), "image-embedder")
    assert plan.from_update == 5


def test_other_models_are_untouched():
    """Only the rolled-back model's entry changes; the others stay exactly as declared now."""
    current = stack_models()
    plan = plan_rollback(history("prod.json"), current, "image-embedder")
    assert plan.models[0] == current[0]
    assert plan.models[1] == recorded(5, "image-embedder") != current[1]


def test_to_restores_a_chosen_update():
    """--to 3 restores update 3's declaration of the model."""
    plan = plan_rollback(history("prod.json"), stack_models(), "image-embedder", to_version=3)
    assert (plan.from_update, plan.restored) == (3, recorded(3, "image-embedder"))


@pytest.mark.parametrize(
    ("version", "message"),
    [(8, "is a update that failed"), (7, "is a refresh that succeeded"), (42, "is not in the history"), (6, "already declared as in update 6")],
)
def test_to_refuses_unusable_updates(version, message):
    """--to names a failed, refresh, unknown or identical update: a clear error."""
    with pytest.raises(RollbackError, match=message):
        plan_rollback(history("prod.json"), stack_models(), "image-embedder", to_version=version)


def test_a_model_with_no_earlier_version_is_a_clear_error():
    """A model first declared by the last differing update has nothing to go back to."""
    updates = [u for u in history("prod.json") if u.version in (6, 2)]
    with pytest.raises(RollbackError, match="'fraud-detector' has no earlier version: update 2 ran without it"):
        plan_rollback(updates, stack_models(), "fraud-detector")


def test_a_model_never_changed_is_a_clear_error():
    """Same declaration in every successful update: nothing to restore."""
    updates = [u for u in history("prod.json") if u.version in (6, 5)]
    with pytest.raises(RollbackError, match="same in all 2 successful update"):
        plan_rollback(updates, stack_models(), "fraud-detector")


def test_only_failed_updates_is_a_clear_error():
    """A history without a successful update lists what it has."""
    with pytest.raises(RollbackError, match=r"no successful update .*2: update in-progress, 1: update failed"):
        plan_rollback(history("only-failed.json"), stack_models(), "fraud-detector")


def test_secret_model_config_asks_for_show_secrets():
    """History omits secret values; the error says how to get them."""
    with pytest.raises(RollbackError, match="--show-secrets"):
        plan_rollback(history("secret-models.json"), stack_models(), "fraud-detector")


def test_history_must_be_the_cli_list():
    """Anything but the CLI's JSON list is refused."""
    with pytest.raises(RollbackError, match="JSON list"):
        parse_history({"updates": []})


def test_dry_run_prints_the_change_and_render_diff_and_writes_nothing(project, capsys):
    """--dry-run --format json: the restored declaration, the config diff and the render diff; file unchanged."""
    before = (project / "Pulumi.prod.yaml").read_text()
    code, out, _ = run(project, "fraud-detector", "--history", str(HISTORY_DIR / "prod.json"), "--dry-run", "--format", "json", capsys=capsys)
    assert code == 0
    document = json.loads(out)
    assert (document["fromUpdate"], document["applied"]) == (3, False)
    assert document["restored"] == recorded(3, "fraud-detector")
    assert "\n-  trafficPercent: 10\n" in document["configChange"]
    changed = {c["name"] for c in document["renderDiff"]["changes"]}
    assert "model-fraud-detector-isvc" in changed and not any("image-embedder" in name for name in changed)
    assert (project / "Pulumi.prod.yaml").read_text() == before


def test_rollback_writes_only_that_model_and_needs_pulumi_to_apply(project, capsys, monkeypatch):
    """Without --dry-run the stack file gets the old declaration (rest of the file intact), then `pulumi up` runs."""
    monkeypatch.setenv("PATH", str(project))  # no pulumi CLI on this PATH
    before = (project / "Pulumi.prod.yaml").read_text()
    code, out, err = run(project, "image-embedder", "--history", str(HISTORY_DIR / "prod.json"), capsys=capsys)
    assert code == 1 and "pulumi CLI is not on PATH; run `pulumi up --stack prod`" in err
    after = yaml.safe_load((project / "Pulumi.prod.yaml").read_text())["config"]
    original = yaml.safe_load(before)["config"]
    assert after["mlops:models"] == [original["mlops:models"][0], recorded(5, "image-embedder")]
    assert {k: v for k, v in after.items() if k != "mlops:models"} == {k: v for k, v in original.items() if k != "mlops:models"}
    head = before[: before.index("  mlops:models:")]
    assert (project / "Pulumi.prod.yaml").read_text().startswith(head)


def test_missing_history_source_is_a_clear_error(project, capsys, monkeypatch):
    """No --history and no pulumi CLI: exit 2 saying what to pass."""
    monkeypatch.setenv("PATH", str(project))
    code, _, err = run(project, "fraud-detector", capsys=capsys)
    assert code == 2 and "pass --history FILE" in err
