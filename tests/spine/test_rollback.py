"""`mlops rollback`: restores exactly one model's earlier declaration and applies only that model.

The histories under tests/fixtures/history are in the shape `pulumi stack history --json` prints
(newest first; config values as {value, objectValue, secret}; secrets without a value), with
failed, in-progress and refresh entries that must never be rolled back to. Update 6 is what is
deployed: tests/fixtures/stackfiles/Pulumi.prod.yaml declares exactly its config, written by hand.
Commands run against a fake `pulumi` (tests/spine/fake_pulumi.py) that records every call.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops.stackops import rollback
from mlops.stackops.history import HistoryError, Update, last_succeeded, parse_history
from mlops.stackops.rollback import RollbackError, pending_changes, plan_rollback
from tests.conftest import PROJECT_DIR
from tests.spine import fake_pulumi

HISTORY_DIR = PROJECT_DIR / "tests" / "fixtures" / "history"
HANDWRITTEN = PROJECT_DIR / "tests" / "fixtures" / "stackfiles" / "Pulumi.prod.yaml"
FRAUD_ISVC = "urn:pulumi:prod::mlops::mlops:serving:ModelDeployment$kubernetes:serving.kserve.io/v1beta1:InferenceService::model-fraud-detector-isvc"
FRAUD_COMPONENT = "urn:pulumi:prod::mlops::mlops:serving:ModelDeployment::model-fraud-detector"


def entries(name: str = "prod.json") -> list[dict]:
    return json.loads((HISTORY_DIR / name).read_text())


def history(name: str) -> list[Update]:
    return parse_history(entries(name))


def stack_models() -> list[dict]:
    return yaml.safe_load(HANDWRITTEN.read_text())["config"]["mlops:models"]


def recorded(update: int, model: str) -> dict:
    (entry,) = [e for e in entries() if e["version"] == update]
    return next(m for m in entry["config"]["mlops:models"]["objectValue"] if m["name"] == model)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(HANDWRITTEN, tmp_path / "Pulumi.prod.yaml")
    shutil.copy(HISTORY_DIR / "prod.json", tmp_path / "history.json")
    return tmp_path


@pytest.fixture()
def pulumi(project: Path, monkeypatch) -> fake_pulumi.FakePulumi:
    fake = fake_pulumi.install(project / "bin", project / "history.json")
    monkeypatch.setenv("PATH", f"{fake.bin_dir}:{Path(shutil.which('git') or '/usr/bin/git').parent}")
    return fake


def run(project: Path, *argv: str, capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    rollback.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["rollback", *argv, "--stack", "prod", "--project-dir", str(project)])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def targets_of(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--target"]


# Choosing the declaration


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
    [(8, "is an update that failed"), (7, "is a refresh that succeeded"), (42, "is not in the history"), (6, "already declared as in update 6")],
)
def test_to_refuses_unusable_updates(version, message):
    """--to names a failed, refresh, unknown or identical update: a clear error."""
    with pytest.raises(RollbackError, match=message):
        plan_rollback(history("prod.json"), stack_models(), "image-embedder", to_version=version)


def test_a_model_removed_and_declared_again_rolls_back_past_the_gap():
    """Update 5 ran without fraud-detector (it was removed, then declared again in 6): update 3's declaration
    is still the earlier version, found without --to."""
    without = next(e for e in entries() if e["version"] == 2)
    updates = parse_history([e for e in entries() if e["version"] in (6, 3)] + [{**without, "version": 5}])
    plan = plan_rollback(updates, stack_models(), "fraud-detector")
    assert (plan.from_update, plan.restored) == (3, recorded(3, "fraud-detector"))


def test_after_a_traffic_abort_the_rollback_goes_to_the_earlier_version():
    """Update 10 set the canary to 0 % (`--traffic`); updates 6 and 5 differ from it only in that percent,
    so the full rollback restores update 3 (version 6), never the aborted 10 % split."""
    aborted = json.loads(json.dumps(next(e for e in entries() if e["version"] == 6)))
    aborted["config"]["mlops:models"]["objectValue"][0]["canary"]["trafficPercent"] = 0
    current = stack_models()
    current[0]["canary"]["trafficPercent"] = 0
    plan = plan_rollback(parse_history([{**aborted, "version": 10}, *entries()]), current, "fraud-detector")
    assert (plan.from_update, plan.restored["model"]["version"]) == (3, "6")


def test_a_model_with_no_earlier_version_is_a_clear_error():
    """Declared as now in every update that declared it: nothing to go back to, and the message says so."""
    updates = [u for u in history("prod.json") if u.version in (6, 2)]
    with pytest.raises(RollbackError, match="'fraud-detector' has no earlier version: .*updates 2 ran without it"):
        plan_rollback(updates, stack_models(), "fraud-detector")


def test_only_failed_updates_is_a_clear_error():
    """A history without a successful update lists what it has."""
    with pytest.raises(RollbackError, match=r"no successful update .*2: update in-progress, 1: update failed"):
        plan_rollback(history("only-failed.json"), stack_models(), "fraud-detector")


def test_secret_model_config_asks_for_show_secrets():
    """History omits secret values; the error says how to get them."""
    with pytest.raises(HistoryError, match="--show-secrets"):
        plan_rollback(history("secret-models.json"), stack_models(), "fraud-detector")


def test_history_must_be_the_cli_list():
    """Anything but the CLI's JSON list is refused."""
    with pytest.raises(HistoryError, match="JSON list"):
        parse_history({"updates": []})


def _models_entry(value) -> bytes:
    """prod.json with update 6 (the one deployed, which every rollback reads) declaring `value` as its models."""
    document = entries()
    next(e for e in document if e["version"] == 6)["config"]["mlops:models"] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe[{\x00", "is not UTF-8 text"),
        (b"[{]", "is not JSON"),
        (_models_entry("fraud-detector"), "config mlops:models is str, not a {value, objectValue, secret} object"),
        (_models_entry({"value": '"fraud-detector"', "secret": False}), "mlops:models is str, not a list"),
        (_models_entry({"value": "[1, 2]", "objectValue": [1, 2], "secret": False}), r"mlops:models\[0\] is 1, not a declaration"),
        (json.dumps([{"version": "nine"}]).encode(), "history entry 0 has no integer version"),
    ],
)
def test_bad_history_files_are_one_line_and_exit_2(project, pulumi, capsys, content, message):
    """Whatever the history file holds, a bad one is one line on stderr with exit 2; nothing runs."""
    (project / "bad.json").write_bytes(content)
    code, out, err = run(project, "fraud-detector", "--history", str(project / "bad.json"), capsys=capsys)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and err.startswith("mlops rollback: ")
    assert re.search(message, err), err
    assert pulumi.commands() == []


# Scope


@pytest.mark.parametrize("fixture", ["prod.json", "prod-text-values.json"])
def test_the_handwritten_file_is_what_update_6_deployed(fixture):
    """Objects recorded as objectValue or only as JSON text compare equal to the file's flow and block mappings."""
    config = yaml.safe_load(HANDWRITTEN.read_text())["config"]
    assert pending_changes(last_succeeded(history(fixture)), config, "fraud-detector") == []


def test_pending_changes_to_other_models_and_keys_stop_the_rollback(project, pulumi, capsys):
    """The file changes image-embedder and mlflow replicas since update 6: both are listed, nothing runs;
    --include-pending goes ahead, still targeting fraud-detector's resources only."""
    path = project / "Pulumi.prod.yaml"
    before = path.read_text().replace("      maxReplicas: 2\n", "      maxReplicas: 1\n").replace("{replicas: 2}", "{replicas: 3}")
    path.write_text(before)
    code, out, err = run(project, "fraud-detector", capsys=capsys)
    assert code == 2 and out == ""
    assert "differs from the last successful update (6)" in err and "--include-pending" in err
    assert "mlops:mlflow: {'replicas': 3} now, {'replicas': 2} in update 6" in err
    assert "mlops:models image-embedder: autoscaling changed since update 6" in err
    assert [argv[:2] for argv in pulumi.commands()] == [["stack", "history"]]
    assert path.read_text() == before

    code, _, err = run(project, "fraud-detector", "--include-pending", "--dry-run", capsys=capsys)
    assert code == 0, err
    (preview,) = [argv for argv in pulumi.commands() if argv[0] == "preview"]
    assert all("model-fraud-detector" in urn for urn in targets_of(preview))


def test_a_declaration_todays_schema_refuses_is_never_applied(project, pulumi, capsys):
    """Update 3's declaration without monitoring (an older shape the schema now refuses): exit 2 naming the
    problem, the file untouched, no update."""
    document = json.loads((project / "history.json").read_text())
    old = next(e for e in document if e["version"] == 3)["config"]["mlops:models"]["objectValue"][0]
    del old["monitoring"]
    (project / "history.json").write_text(json.dumps(document))
    before = (project / "Pulumi.prod.yaml").read_bytes()
    code, out, err = run(project, "fraud-detector", capsys=capsys)
    assert (code, out) == (2, "") and "without observability" in err
    assert (project / "Pulumi.prod.yaml").read_bytes() == before
    assert [argv[:2] for argv in pulumi.commands()] == [["stack", "history"]]


# Applying


def test_rollback_applies_only_the_model_and_commits(project, pulumi, capsys):
    """fraud-detector back to update 3: the stack file changes inside that model only, `pulumi up` targets its
    component and children, stdout is one JSON document with the update's number, and --commit records why."""
    git_repository(project)
    before = (project / "Pulumi.prod.yaml").read_text()
    code, out, err = run(project, "fraud-detector", "--format", "json", "--commit", "--reason", "INC-42 5xx spike", capsys=capsys)
    assert code == 0, err
    document = json.loads(out)
    assert (document["applied"], document["result"], document["update"], document["committed"]) == (True, "succeeded", 10, True)
    assert "Updating (prod)" in err and "Updating" not in out

    (up,) = [argv for argv in pulumi.commands() if argv[0] == "up"]
    targets = targets_of(up)
    assert up[: up.index("--target")] == ["up", "--stack", "prod", "--yes", "--skip-preview", "--message", up[6]]
    assert up[-1] == "--target-dependents" and {FRAUD_ISVC, FRAUD_COMPONENT} <= set(targets)
    assert all("model-fraud-detector" in urn for urn in targets) and targets == document["targets"]

    after = (project / "Pulumi.prod.yaml").read_text()
    (seen_by_up,) = [call["stackFile"] for call in pulumi.calls() if call["argv"][0] == "up"]
    assert seen_by_up == after
    head, tail = before[: before.index("  - name: fraud-detector")], before[before.index("# image-embedder runs") :]
    assert after.startswith(head) and after.endswith(tail)
    assert yaml.safe_load(after)["config"]["mlops:models"] == [recorded(3, "fraud-detector"), stack_models()[1]]

    log = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=project, capture_output=True, text=True, check=True).stdout
    assert log.startswith("rollback fraud-detector: version 7 -> version 6 (declaration of update 3)") and "INC-42 5xx spike" in log
    assert subprocess.run(["git", "status", "--porcelain", "Pulumi.prod.yaml"], cwd=project, capture_output=True, text=True).stdout == ""


def git_repository(project: Path) -> None:
    """The project as a repository with the stack file committed; the author is set locally, so the
    machine's git config does not matter."""
    for argv in (
        ["init", "--quiet"],
        ["config", "user.name", "on-call"],
        ["config", "user.email", "on-call@example.com"],
        ["add", "Pulumi.prod.yaml"],
        ["commit", "--quiet", "-m", "base"],
    ):
        subprocess.run(["git", *argv], cwd=project, check=True)


def test_a_failed_update_restores_the_file_and_exits_1(project, capsys, monkeypatch):
    """`pulumi up` fails: exit 1, the JSON says not applied with the failed update's number, the file is as before."""
    fake = fake_pulumi.install(project / "bin", project / "history.json", fail=("up",))
    monkeypatch.setenv("PATH", str(fake.bin_dir))
    before = (project / "Pulumi.prod.yaml").read_bytes()
    code, out, err = run(project, "fraud-detector", "--format", "json", capsys=capsys)
    assert code == 1
    document = json.loads(out)
    assert (document["applied"], document["result"], document["update"], document["fileRestored"]) == (False, "failed", 10, True)
    assert fake.history()[0]["result"] == "failed" and "error: up failed" in err
    newest = ["stack", "history", "--json", "--stack", "prod", "--page-size", "1", "--page", "1"]
    commands = fake.commands()
    assert [commands[0], commands[1], commands[3]] == [newest[:5], newest, newest] and commands[2][0] == "up"
    assert (project / "Pulumi.prod.yaml").read_bytes() == before


def test_dry_run_previews_the_targeted_update_and_leaves_the_file(project, pulumi, capsys):
    """--dry-run: `pulumi preview` with the same targets sees the edited file; afterwards the file is as before."""
    before = (project / "Pulumi.prod.yaml").read_text()
    code, out, _ = run(project, "fraud-detector", "--dry-run", "--format", "json", capsys=capsys)
    assert code == 0
    document = json.loads(out)
    assert (document["fromUpdate"], document["applied"], document["dryRun"]) == (3, False, True)
    assert "\n-  trafficPercent: 10\n" in document["configChange"]
    (preview,) = [call for call in pulumi.calls() if call["argv"][0] == "preview"]
    assert FRAUD_ISVC in targets_of(preview["argv"]) and "--json" in preview["argv"]
    assert 'version: "6"' in preview["stackFile"] and preview["stackFile"] != before
    assert {step["urn"] for step in document["preview"]["steps"]} == set(document["targets"])
    assert (project / "Pulumi.prod.yaml").read_text() == before
    assert not any(argv[0] == "up" for argv in pulumi.commands())


def test_traffic_sets_the_canary_to_zero_and_applies_it(project, pulumi, capsys):
    """--traffic: one line changes (trafficPercent 10 -> 0), the targeted update runs, and the text output warns
    that the change is not committed."""
    before = (project / "Pulumi.prod.yaml").read_text()
    code, out, _ = run(project, "fraud-detector", "--traffic", capsys=capsys)
    assert code == 0
    assert (project / "Pulumi.prod.yaml").read_text() == before.replace("trafficPercent: 10   #", "trafficPercent: 0    #")
    (up,) = [argv for argv in pulumi.commands() if argv[0] == "up"]
    assert FRAUD_ISVC in targets_of(up)
    assert "canary traffic 10% -> 0%" in out and "update 10 succeeded" in out
    assert "not committed: the next `pulumi up` from main would undo this rollback" in out


def test_traffic_needs_a_model_in_canary(project, pulumi, capsys):
    """image-embedder is promoted (100 %): --traffic refuses, exit 2."""
    code, _, err = run(project, "image-embedder", "--traffic", capsys=capsys)
    assert code == 2 and "has its canary at 100%" in err


def test_commit_needs_a_reason_and_a_repository(project, pulumi, capsys):
    """--commit without --reason, or outside a git work tree: exit 2 before anything runs."""
    code, _, err = run(project, "fraud-detector", "--commit", capsys=capsys)
    assert code == 2 and "--commit needs --reason" in err
    code, _, err = run(project, "fraud-detector", "--commit", "--reason", "INC-42", capsys=capsys)
    assert code == 2 and "is not inside a git work tree" in err
    assert pulumi.commands() == []


def test_without_the_pulumi_cli_nothing_is_written(project, capsys, monkeypatch):
    """--history given but no pulumi to apply with: exit 2 before the file is touched."""
    monkeypatch.setenv("PATH", str(project))
    before = (project / "Pulumi.prod.yaml").read_bytes()
    code, _, err = run(project, "fraud-detector", "--history", str(project / "history.json"), capsys=capsys)
    assert code == 2 and "the pulumi CLI is not on PATH" in err
    assert (project / "Pulumi.prod.yaml").read_bytes() == before


def test_missing_history_source_is_a_clear_error(project, capsys, monkeypatch):
    """No --history and no pulumi CLI: exit 2 saying what to pass."""
    monkeypatch.setenv("PATH", str(project))
    code, _, err = run(project, "fraud-detector", capsys=capsys)
    assert code == 2 and "pass --history FILE" in err
