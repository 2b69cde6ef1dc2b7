"""Render a stack as it was at a git ref, in a temporary worktree, for diffs and previews."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlops.project import default_reference_dir, progress


class GitRefError(ValueError):
    """A --base ref that cannot be checked out or rendered."""


def render_at_ref(project_dir: Path, ref: str, stack: str) -> dict | None:
    """Render `stack` as of git `ref` in a temporary worktree; None if the stack did not exist then."""
    git_root = Path(_git(project_dir, "rev-parse", "--show-toplevel").strip())
    subdir = project_dir.resolve().relative_to(git_root.resolve())
    commit = _git(project_dir, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlops-diff-") as scratch:
        worktree = Path(scratch) / "base"
        _git(project_dir, "worktree", "add", "--detach", str(worktree), commit)
        try:
            base_project = worktree / subdir
            if not (base_project / f"Pulumi.{stack}.yaml").is_file():
                return None
            out_dir = Path(scratch) / "render"
            env = {**os.environ, "PYTHONPATH": str(base_project), "MLOPS_REFERENCE_DIR": str(default_reference_dir(project_dir))}
            completed = subprocess.run(
                [sys.executable, "-m", "mlops", "render", "--stack", stack, "--out", str(out_dir)],
                cwd=base_project,
                env=env,
                capture_output=True,
                text=True,
            )
            if completed.returncode != 0:
                raise GitRefError(f"rendering {stack} at {ref} ({commit[:12]}) failed:\n{completed.stderr.strip()}")
            progress(f"rendered {ref} ({commit[:12]}) in {time.perf_counter() - started:.2f}s")
            return json.loads((out_dir / "state.json").read_text())
        finally:
            _git(project_dir, "worktree", "remove", "--force", str(worktree))
            shutil.rmtree(worktree, ignore_errors=True)


def _git(cwd: Path, *args: str) -> str:
    completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if completed.returncode != 0:
        raise GitRefError(f"git {' '.join(args)}: {completed.stderr.strip()}")
    return completed.stdout
