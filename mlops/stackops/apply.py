"""Apply one model's stack-file change with a targeted `pulumi up`, and undo the file if it fails.

Shared by `rollback` and `canary promote --apply`: the edited text (already validated by
`StackModels.edited_text`) replaces the file, `pulumi up` runs on the model's resources only, the
update's number is read back from history, and a failed update puts the previous text back so the
file again says what is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.stackops import pulumi_cli
from mlops.stackops.stack_models import StackModels


@dataclass(frozen=True)
class Applied:
    succeeded: bool
    update: int | None  # the update's number in the stack history; None if history could not say
    file_restored: bool

    @property
    def result(self) -> str:
        return "succeeded" if self.succeeded else "failed"


def apply_model_change(project_dir: Path, stack_models: StackModels, edited: str, targets: list[str], message: str) -> Applied:
    before = latest_update(project_dir, stack_models.stack)
    previous = stack_models.text()
    stack_models.write_text(edited)
    outcome = pulumi_cli.up(project_dir, stack_models.stack, targets, message)
    after = latest_update(project_dir, stack_models.stack)
    update = after if after is not None and (before is None or after > before) else None
    if not outcome.ok:
        stack_models.write_text(previous)
    return Applied(succeeded=outcome.ok, update=update, file_restored=not outcome.ok)


def latest_update(project_dir: Path, stack: str) -> int | None:
    """The newest update's number, or None if history cannot be read (the outcome is then reported without it)."""
    try:
        entries = pulumi_cli.stack_history(project_dir, stack, page_size=1)
        return max((int(entry["version"]) for entry in entries), default=None)
    except (pulumi_cli.PulumiError, KeyError, TypeError, ValueError):
        return None
