"""The `mlops` command's contract: results on stdout, diagnostics on stderr, documented exit codes."""

from __future__ import annotations

import json

from mlops.cli import build_parser, main
from mlops.project import EXIT_BAD_INPUT, EXIT_OK
from tests.conftest import PROJECT_DIR, REFERENCE_DIR


def test_help_documents_the_exit_codes():
    text = build_parser().format_help()
    assert "exit codes:" in text and "2  bad input" in text


def test_render_writes_state_and_manifests(tmp_path, capsys):
    code = main(["render", "--stack", "dev", "--project-dir", str(PROJECT_DIR), "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert code == EXIT_OK
    assert out.out.startswith("stack dev (cloud local, environment dev):")
    assert "rendered stack dev in" in out.err
    assert json.loads((tmp_path / "state.json").read_text())["stack"] == "dev"


def test_validate_passes_on_dev(capsys):
    code = main(["validate", "--stack", "dev", "--project-dir", str(PROJECT_DIR), "--reference", str(REFERENCE_DIR)])
    assert code == EXIT_OK
    assert capsys.readouterr().out.rstrip().endswith("OK: no findings")


def test_bad_config_exits_2_with_the_problem_on_stderr(capsys):
    code = main(["render", "--stack", "dev", "--project-dir", str(PROJECT_DIR), "--config", "mlops:models[0].autoscaling.maxReplicas=0"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "mlops:models[0].autoscaling.maxReplicas: Input should be greater than or equal to 1 (got 0)" in err


def test_unknown_stack_exits_2(capsys):
    code = main(["render", "--stack", "staging", "--project-dir", str(PROJECT_DIR)])
    assert code == EXIT_BAD_INPUT
    assert "stack 'staging' has no Pulumi.staging.yaml; stacks here: dev, prod" in capsys.readouterr().err


def test_drift_takes_its_options_through_the_mlops_command(tmp_path, capsys):
    """`mlops drift --reference A --current B` reaches the drift engine with its own options."""
    (tmp_path / "reference.csv").write_text("x\n" + "\n".join(str(n % 7) for n in range(200)) + "\n")
    (tmp_path / "current.csv").write_text("x\n" + "\n".join(str(n % 7 + 40) for n in range(200)) + "\n")
    code = main(["drift", "--reference", str(tmp_path / "reference.csv"), "--current", str(tmp_path / "current.csv"), "--format", "json"])
    assert code == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["dataset_drifted"] is True and report["columns"][0]["drifted"] is True
