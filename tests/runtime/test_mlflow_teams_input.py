"""`python -m access.mlflow_teams` on bad input: one line naming what is wrong, exit 2; MLflow out of
reach: one line, exit 6 (the Job retries that one). Its work on a real MLflow: test_mlflow_teams.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from access.mlflow_teams import EXIT_CONFIG_ERROR, EXIT_MLFLOW_ERROR, SHARED_TEAM, main
from tests.conftest import PROJECT_DIR
from tests.runtime.servers import free_port

CONFIG = PROJECT_DIR / "tests" / "fixtures" / "mlflow" / "teams.json"
ADMIN = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "secret"}


@pytest.fixture
def passwords(tmp_path: Path) -> Path:
    directory = tmp_path / "passwords"
    directory.mkdir()
    for team in ("fraud", "vision", SHARED_TEAM):
        (directory / team).write_text(f"{team}-password\n")
    return directory


def run(capsys: pytest.CaptureFixture[str], config: Path, passwords: Path, environ: dict[str, str]) -> tuple[int, list[str]]:
    code = main(["--config", str(config), "--passwords-dir", str(passwords)], environ)
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err.splitlines()


def unreachable() -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}", **ADMIN}


def test_missing_environment_is_named(capsys, passwords):
    assert run(capsys, CONFIG, passwords, {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}) == (
        EXIT_CONFIG_ERROR,
        ["MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD must be set: the tracking server and its admin's credentials"],
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Fraud_Team"}, "teams.0.name='Fraud_Team': String should match pattern '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"),
        ({"experimentPrefix": "/teams/%/"}, "teams.0.experimentPrefix='/teams/%/': String should match pattern '^/[A-Za-z0-9./-]+/$'"),
        ({"experiments": [""]}, "teams.0.experiments.0='': String should have at least 1 character"),
        ({"owner": "someone"}, "teams.0.owner='someone': Extra inputs are not permitted"),
    ],
)
def test_a_bad_config_is_refused_naming_the_key_and_value(capsys, passwords, tmp_path, change, message):
    config = json.loads(CONFIG.read_text())
    team = {**config["teams"][0], **change}
    config["teams"][0] = {key: value for key, value in team.items() if value is not None}
    path = tmp_path / "teams.json"
    path.write_text(json.dumps(config))
    assert run(capsys, path, passwords, unreachable()) == (EXIT_CONFIG_ERROR, [f"--config {path}: {message}"])


def test_a_repeated_team_is_refused(capsys, passwords, tmp_path):
    config = json.loads(CONFIG.read_text())
    path = tmp_path / "teams.json"
    path.write_text(json.dumps({"teams": [config["teams"][0], config["teams"][0]]}))
    assert run(capsys, path, passwords, unreachable()) == (
        EXIT_CONFIG_ERROR, [f"--config {path}: teams: Value error, team names must be unique; repeated: ['fraud']"]
    )  # fmt: skip


def test_a_missing_password_file_names_the_machine_user_and_the_path(capsys, passwords):
    (passwords / "vision").unlink()
    assert run(capsys, CONFIG, passwords, unreachable()) == (
        EXIT_CONFIG_ERROR,
        [f"--passwords-dir {passwords}: the password of team-vision ({passwords / 'vision'}) cannot be read (No such file or directory)"],
    )


def test_an_unreadable_config_is_named(capsys, passwords, tmp_path):
    missing = tmp_path / "absent.json"
    assert run(capsys, missing, passwords, unreachable()) == (
        EXIT_CONFIG_ERROR, [f"--config {missing}: cannot read it (No such file or directory)"]
    )  # fmt: skip


def test_mlflow_out_of_reach_is_one_line_and_exit_6(capsys, passwords):
    environ = unreachable()
    code, lines = run(capsys, CONFIG, passwords, environ)
    assert code == EXIT_MLFLOW_ERROR and len(lines) == 1
    assert lines[0].startswith(f"cannot reach MLflow at {environ['MLFLOW_TRACKING_URI']}: ")
