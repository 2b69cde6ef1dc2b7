"""`mlops rollback MODEL --stack STACK`: restore a model's previous declaration from stack history.

Pulumi has no rollback command (pulumi/pulumi#96): rolling back is restoring earlier config and
running `pulumi up`. Model declarations live in the stack config, so every update's history entry
records them (`config["mlops:models"]`). This finds the last successful update in which the
model's declaration differed from the current one, puts exactly that declaration back into
`Pulumi.<stack>.yaml` (other models untouched) and runs `pulumi up`; `--dry-run` only prints the
config change and the render diff.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlops.stackops.stack_models import MODELS_KEY, StackModels
from stacks.config import ModelDeployment

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class RollbackError(ValueError):
    """No usable earlier declaration, or unreadable history; the message says which and what to do."""


@dataclass(frozen=True)
class Update:
    """One entry of `pulumi stack history --json`, reduced to what rollback reads."""

    version: int
    kind: str
    result: str
    config: dict[str, Any]

    @property
    def succeeded(self) -> bool:
        return self.kind == "update" and self.result == "succeeded"


@dataclass(frozen=True)
class RollbackPlan:
    model: str
    from_update: int
    current: dict[str, Any] | None
    restored: dict[str, Any]
    models: list[dict[str, Any]]


def parse_history(document: Any) -> list[Update]:
    if not isinstance(document, list):
        raise RollbackError("stack history must be the JSON list `pulumi stack history --json` prints")
    updates = []
    for entry in document:
        try:
            updates.append(
                Update(int(entry["version"]), str(entry.get("kind", "")), str(entry.get("result", "")), dict(entry.get("config") or {}))
            )
        except (KeyError, TypeError, ValueError) as error:
            raise RollbackError(f"history entry {entry!r:.120} has no usable version/kind/result: {error}") from error
    return sorted(updates, key=lambda u: u.version, reverse=True)


def declared_models(update: Update) -> list[dict[str, Any]] | None:
    """The `mlops:models` list an update ran with; None if that update had none."""
    entry = update.config.get(MODELS_KEY)
    if entry is None:
        return None
    if entry.get("secret") and entry.get("objectValue") is None and entry.get("value") is None:
        raise RollbackError(
            f"update {update.version} holds {MODELS_KEY} as a secret, which history omits; pass --history with the "
            "output of `pulumi stack history --json --show-secrets`"
        )
    value = entry.get("objectValue")
    if value is None:
        text = entry.get("value")
        try:
            value = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError as error:
            raise RollbackError(f"update {update.version}: {MODELS_KEY} is not JSON: {error}") from error
    if not isinstance(value, list):
        raise RollbackError(f"update {update.version}: {MODELS_KEY} is {type(value).__name__}, not a list")
    return value


def _normalized(declaration: dict[str, Any] | None) -> Any:
    """Declarations compare by meaning (defaults filled in), falling back to their text for old shapes."""
    if declaration is None:
        return None
    try:
        return ModelDeployment.model_validate(declaration).model_dump(mode="json")
    except ValidationError:
        return json.loads(json.dumps(declaration, sort_keys=True))


def _find(models: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    return next((m for m in models or [] if m.get("name") == name), None)


def plan_rollback(
    history: list[Update], current_models: list[dict[str, Any]], name: str, to_version: int | None = None
) -> RollbackPlan:
    current = _find(current_models, name)
    succeeded = [u for u in history if u.succeeded]
    if not succeeded:
        results = ", ".join(f"{u.version}: {u.kind} {u.result}" for u in history) or "none"
        raise RollbackError(f"the stack has no successful update to roll back to (updates: {results})")
    if to_version is not None:
        target = next((u for u in history if u.version == to_version), None)
        if target is None or not target.succeeded:
            found = "not in the history" if target is None else f"a {target.kind} that {target.result}"
            raise RollbackError(
                f"update {to_version} is {found}; successful updates: {', '.join(str(u.version) for u in succeeded)}"
            )
        declaration = _find(declared_models(target), name)
        if declaration is None:
            raise RollbackError(f"model {name!r} was not declared in update {to_version}")
        if _normalized(declaration) == _normalized(current):
            raise RollbackError(f"model {name!r} is already declared as in update {to_version}; nothing to restore")
        return _plan(name, target.version, current, declaration, current_models)
    for update in succeeded:
        declaration = _find(declared_models(update), name)
        if _normalized(declaration) == _normalized(current):
            continue
        if declaration is None:
            raise RollbackError(
                f"model {name!r} has no earlier version: update {update.version} ran without it, and every later "
                "successful update declared it as it is now"
            )
        return _plan(name, update.version, current, declaration, current_models)
    raise RollbackError(
        f"model {name!r} has no earlier version: its declaration is the same in all {len(succeeded)} successful "
        f"update(s) ({', '.join(str(u.version) for u in succeeded)})"
    )


def _plan(
    name: str, version: int, current: dict[str, Any] | None, declaration: dict[str, Any], current_models: list[dict[str, Any]]
) -> RollbackPlan:
    models = json.loads(json.dumps(current_models))
    index = next((i for i, m in enumerate(models) if m.get("name") == name), None)
    if index is None:
        models.append(declaration)
    else:
        models[index] = declaration
    return RollbackPlan(model=name, from_update=version, current=current, restored=declaration, models=models)


def config_change(plan: RollbackPlan) -> str:
    def text(declaration: dict[str, Any] | None) -> list[str]:
        return yaml.safe_dump(declaration, sort_keys=False).splitlines(keepends=True) if declaration else []

    return "".join(
        difflib.unified_diff(
            text(plan.current), text(plan.restored), f"{plan.model} (declared now)", f"{plan.model} (update {plan.from_update})"
        )
    )


def read_history(args: argparse.Namespace) -> list[Update]:
    if args.history:
        path = Path(args.history)
        try:
            return parse_history(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise RollbackError(f"cannot read history {path}: {error}") from error
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise RollbackError("the pulumi CLI is not on PATH; pass --history FILE (from `pulumi stack history --json`)")
    completed = subprocess.run(
        [pulumi, "stack", "history", "--json", "--stack", args.stack], cwd=args.project_dir, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RollbackError(f"pulumi stack history failed: {completed.stderr.strip()}")
    return parse_history(json.loads(completed.stdout))


def render_diff(project_dir: Path, stack: str, models: list[dict[str, Any]]) -> Any:
    from mlops.offline.diff import diff_renderings
    from mlops.offline.render import render

    base = render(project_dir, stack).document()
    head = render(project_dir, stack, {MODELS_KEY: json.dumps(models)}).document()
    return diff_renderings(base, head)


def command_rollback(args: argparse.Namespace) -> int:
    project_dir = Path(args.project_dir)
    stack_models = StackModels(project_dir, args.stack)
    try:
        plan = plan_rollback(read_history(args), stack_models.declarations(), args.model, args.to)
    except RollbackError as error:
        print(f"mlops rollback: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stack_models.validate(plan.models)
    change = config_change(plan)
    diff = render_diff(project_dir, args.stack, plan.models) if args.dry_run else None
    if args.format == "json":
        document = {
            "model": plan.model,
            "stack": args.stack,
            "fromUpdate": plan.from_update,
            "current": plan.current,
            "restored": plan.restored,
            "configChange": change,
            "renderDiff": json.loads(diff.to_json()) if diff is not None else None,
            "applied": not args.dry_run,
        }
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(f"{plan.model}: restoring its declaration from update {plan.from_update}")
        print(change, end="")
        if diff is not None:
            print(diff.to_markdown(), end="")
    if args.dry_run:
        return EXIT_OK
    stack_models.write(plan.models)
    return _pulumi_up(args, plan)


def _pulumi_up(args: argparse.Namespace, plan: RollbackPlan) -> int:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        print(
            f"mlops rollback: wrote {MODELS_KEY} but the pulumi CLI is not on PATH; run `pulumi up --stack {args.stack}`",
            file=sys.stderr,
        )
        return EXIT_FAILED
    message = f"mlops rollback {plan.model} to its declaration in update {plan.from_update}"
    completed = subprocess.run([pulumi, "up", "--stack", args.stack, "--yes", "--message", message], cwd=args.project_dir)
    return EXIT_OK if completed.returncode == 0 else EXIT_FAILED


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="restore a model's previous declaration from the stack's update history, then pulumi up",
    )
    parser.add_argument("model", help="model deployment name (mlops:models[].name)")
    parser.add_argument("--stack", required=True, help="stack name: edits Pulumi.<stack>.yaml")
    parser.add_argument("--to", type=int, metavar="UPDATE_VERSION", help="restore the declaration of this update (default: the last that differed)")
    parser.add_argument("--history", help="`pulumi stack history --json` output to read instead of calling the pulumi CLI")
    parser.add_argument("--dry-run", action="store_true", help="print the config change and the render diff; change nothing")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--project-dir", default=".", help="project directory holding Pulumi.yaml (default: .)")
    parser.set_defaults(func=command_rollback)
