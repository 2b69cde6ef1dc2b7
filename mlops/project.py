"""What every `mlops` command shares: exit codes, the project directory, the reference data, progress."""

from __future__ import annotations

import os
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1  # validate found failures, or diff --exit-code found changes
EXIT_BAD_INPUT = 2  # invalid stack config, unknown stack, bad arguments, unreadable git ref

EPILOG = """exit codes:
  0  success (validate: no failures; diff: computed)
  1  validate found failures (schemas, mandatory policies, checkov); diff --exit-code found changes
  2  bad input: invalid stack config (one line per problem), unknown stack, bad --config, bad git ref
"""


def find_project_dir(start: Path) -> Path:
    for candidate in (start, *start.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise SystemExit(f"mlops: no Pulumi.yaml in {start} or its parents; run inside the project")


def default_reference_dir(project_dir: Path) -> Path:
    return Path(os.environ.get("MLOPS_REFERENCE_DIR", project_dir.parent / "shared" / "reference"))


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
