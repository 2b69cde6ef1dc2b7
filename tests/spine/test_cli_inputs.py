"""Every `mlops` entry point turns bad input into one `mlops...` line on stderr and exit 2, never a
traceback; every `--help` prints."""

from __future__ import annotations

import argparse

import pytest

from mlops.cli import build_parser, main
from mlops.project import EXIT_BAD_INPUT, EXIT_OK
from tests.conftest import PROJECT_DIR

PROJECT = ["--project-dir", str(PROJECT_DIR)]


def _subcommand_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                paths.append((*prefix, name))
                paths += _subcommand_paths(child, (*prefix, name))
    return paths


SUBCOMMANDS = _subcommand_paths(build_parser())


def test_the_subcommand_list_covers_every_entry_point():
    top = {path[0] for path in SUBCOMMANDS}
    assert top == {
        "render", "validate", "diff", "preview", "prices", "reference", "models", "canary", "history", "rollback", "drift", "policy-config",
    }


@pytest.mark.parametrize("path", [(), *SUBCOMMANDS], ids=lambda path: " ".join(path) or "mlops")
def test_every_help_prints(path, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    assert exited.value.code == EXIT_OK
    assert capsys.readouterr().out.startswith(f"usage: mlops{' ' if path else ''}{' '.join(path)}")


BAD_INPUTS = {
    "render": (["render", "--stack", "dev", *PROJECT, "--config", "mlops:cloud=azure"], "mlops: mlops:cloud: Input should be"),
    "validate": (
        ["validate", "--stack", "dev", *PROJECT, "--no-scan", "--config", "mlops:models[0].resources.cpu=0"],
        "mlops: mlops:models[0].resources.cpu: '0' requests nothing",
    ),
    "diff": (["diff", "--stack", "dev", *PROJECT, "--base", "no-such-ref"], "mlops: git rev-parse --verify no-such-ref"),
    "preview": (["preview", "--stack", "staging", *PROJECT, "--base", "HEAD", "--no-scan"], "mlops: stack 'staging' has no"),
    "models": (["models", "resolve", "churn-classifier", "--stack", "dev", *PROJECT, "--version", "1"], "mlops models resolve: give --tracking-uri"),
    "canary": (
        ["canary", "promote", "no-such-model", "--stack", "dev", *PROJECT],
        "mlops: stack 'dev' declares no model 'no-such-model'",
    ),
    "rollback": (
        ["rollback", "churn-classifier", "--stack", "dev", *PROJECT, "--history", "/nonexistent/history.json"],
        "mlops rollback: cannot read history /nonexistent/history.json",
    ),
    "drift": (["drift", "--reference", "/nonexistent/reference.parquet", "--current", "/nonexistent/current.parquet"], "mlops drift: error: no file"),
    "policy-config": (["policy-config", "--stack", "dev", *PROJECT, "--config", "nocolon"], "mlops: --config 'nocolon': expected NAMESPACE:KEY=VALUE"),
    "prices": (["prices", "refresh", "--cloud", "aws", "--region", "us-nowhere-1"], "mlops prices refresh: aws has no region 'us-nowhere-1'"),
    "history": (
        ["history", "churn-classifier", "--stack", "dev", *PROJECT, "--history", "/nonexistent/history.json"],
        "mlops history: cannot read history /nonexistent/history.json",
    ),
    "reference": (["reference", "check", "--reference", "/nonexistent"], "mlops: reference data at /nonexistent has no manifest.yaml"),
    "no-project": (["render", "--stack", "dev", "--project-dir", "/"], "mlops: no Pulumi.yaml in / or its parents"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    arguments, message = BAD_INPUTS[case]
    code = main(arguments)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert "Traceback" not in err
    # Progress lines ("previewing stack ...") may precede it; the verdict is one line.
    verdicts = [line for line in err.splitlines() if line.startswith("mlops")]
    assert len(verdicts) == 1 and verdicts[0].startswith(message), err


def test_several_config_problems_give_one_line_each(capsys):
    code = main(["render", "--stack", "dev", *PROJECT, "--config", "mlops:cloud=azure", "--config", "mlops:environment=staging"])
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_BAD_INPUT
    assert [line.split(":")[1:3] for line in err] == [[" mlops", "cloud"], [" mlops", "environment"]]
