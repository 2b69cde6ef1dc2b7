"""The few `pulumi` CLI calls day-2 commands make, with Pulumi's own output kept off stdout.

Flags as pulumi's Automation API passes them (pulumi 3.272, pulumi/automation/_stack.py):
`up --yes --skip-preview`, `--target URN` per resource and `--target-dependents`.

A command's stdout is its result (one JSON document with `--format json`), so everything the CLI
prints while it works is passed through to stderr, line by line as it comes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PulumiError(RuntimeError):
    """The pulumi CLI is missing or a call that must answer (history) failed."""


@dataclass(frozen=True)
class Outcome:
    """How a `pulumi up`/`preview` ended; `stdout` is kept only when it was asked for as JSON."""

    returncode: int
    stdout: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def executable() -> str:
    found = shutil.which("pulumi")
    if found is None:
        raise PulumiError("the pulumi CLI is not on PATH")
    return found


def stack_history(project_dir: Path, stack: str, page_size: int | None = None) -> Any:
    """`pulumi stack history --json` as parsed JSON (newest first)."""
    argv = [executable(), "stack", "history", "--json", "--stack", stack]
    if page_size is not None:
        # The newest page; pulumi's own Automation API passes --page with --page-size the same way
        # (pulumi 3.272, pulumi/automation/_stack.py `Stack.history`).
        argv += ["--page-size", str(page_size), "--page", "1"]
    completed = subprocess.run(argv, cwd=project_dir, capture_output=True, text=True)
    if completed.returncode != 0:
        raise PulumiError(f"pulumi stack history failed: {completed.stderr.strip()[-500:]}")
    try:
        return json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        raise PulumiError(f"pulumi stack history --json printed no JSON: {error}") from error


def target_arguments(targets: list[str]) -> list[str]:
    """`--target URN` for each resource, and `--target-dependents` so what depends on them follows."""
    return [argument for urn in targets for argument in ("--target", urn)] + ["--target-dependents"]


def up(project_dir: Path, stack: str, targets: list[str], message: str) -> Outcome:
    argv = [executable(), "up", "--stack", stack, "--yes", "--skip-preview", "--message", message, *target_arguments(targets)]
    return Outcome(_passed_through(argv, project_dir))


def preview(project_dir: Path, stack: str, targets: list[str], as_json: bool) -> Outcome:
    argv = [executable(), "preview", "--stack", stack, *target_arguments(targets)]
    if as_json:
        completed = subprocess.run([*argv, "--json"], cwd=project_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sys.stderr.write(completed.stderr)
        return Outcome(completed.returncode, completed.stdout)
    return Outcome(_passed_through([*argv, "--diff"], project_dir))


def _passed_through(argv: list[str], project_dir: Path) -> int:
    with subprocess.Popen(argv, cwd=project_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout or ():
            sys.stderr.write(line)
            sys.stderr.flush()
        return process.wait()
