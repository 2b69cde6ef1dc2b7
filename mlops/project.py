"""What every `mlops` command shares: exit codes, the project directory, the reference data, progress."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1  # validate found failures, or diff --exit-code found changes
EXIT_BAD_INPUT = 2  # invalid stack config, unknown stack, bad arguments, unreadable git ref

EPILOG = """exit codes:
  0  success (validate: no failures; diff: computed)
  1  validate found failures (schemas, mandatory policies, checkov); diff --exit-code found changes;
     rollback: the update (or its preview) failed, and the stack file is back as it was
  2  bad input: invalid stack config (one line per problem), unknown stack, bad --config, bad git ref
"""


class ProjectNotFound(ValueError):
    """No Pulumi project at or above the directory given."""


def find_project_dir(start: Path) -> Path:
    for candidate in (start, *start.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise ProjectNotFound(f"no Pulumi.yaml in {start} or its parents; run inside the project or pass --project-dir")


def default_reference_dir(project_dir: Path) -> Path:
    """The project's own reference/ (upstream CRDs and chart defaults), unless $MLOPS_REFERENCE_DIR says otherwise."""
    return Path(os.environ.get("MLOPS_REFERENCE_DIR", project_dir / "reference"))


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; back on after it if it was on before.

    The Pulumi SDK allocates millions of short-lived objects per thousand resources, and with the
    collector on its full collections re-walk everything built so far: a third of a render's time,
    and most of a validate's after it (the rendering stays in memory). The render pauses it while
    the program is declared; a CLI command, a short-lived process, runs entirely without it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
