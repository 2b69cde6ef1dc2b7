"""The `mlops` command from the runtime virtualenv (no Pulumi): `mlops drift` works, every other
command says in one line that it needs the IaC virtualenv."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import PROJECT_DIR


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops", *arguments], cwd=PROJECT_DIR, capture_output=True, text=True,
        env={"PYTHONPATH": str(PROJECT_DIR), "PATH": "/usr/bin:/bin"}, timeout=120,
    )


def test_drift_help_works_without_pulumi():
    completed = run("drift", "--help")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: mlops drift")


def test_other_commands_say_what_they_need_in_one_line():
    completed = run("render", "--stack", "dev")
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "mlops: this environment lacks 'pulumi', which every command but `mlops drift` needs; "
        "run it from the IaC virtualenv (pip install -e .)"
    ]
