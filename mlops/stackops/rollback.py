"""`mlops rollback MODEL --stack STACK`: put one model back as it was, and apply only that model.

Pulumi has no rollback command (pulumi/pulumi#96): rolling back is restoring earlier config and
running `pulumi up`. Model declarations live in the stack config, so every update's history entry
records them (`config["mlops:models"]`). A rollback

1. finds the last successful update in which the model was declared differently from now (or the
   update given with `--to`); `--traffic` instead sets a running canary's traffic to 0, KServe's
   documented rollback, which sends every request back to the stable version within seconds;
2. checks the scope: the rest of the stack config must equal that of the last successful update,
   otherwise those pending changes are listed and nothing happens (`--include-pending` overrides);
3. writes the declaration into `Pulumi.<stack>.yaml` with the shared round-trip writer, and runs
   `pulumi up --target <URN>... --target-dependents` on the URNs of the model's component and its
   children; `--dry-run` runs `pulumi preview` with the same targets and puts the file back;
4. restores the file if the update fails; with `--commit` commits it once the update succeeded.
"""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlops.project import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from mlops.stackfiles import StackFileError
from mlops.stackops import pulumi_cli
from mlops.stackops.apply import apply_model_change
from mlops.stackops.history import (
    HistoryError,
    Update,
    declared_models,
    find_model,
    last_succeeded,
    read_history,
    version_label,
)
from mlops.stackops.stack_models import MODELS_KEY, StackModels
from mlops.stackops.targets import model_targets
from stacks.config import ConfigError, ModelDeployment


class RollbackError(HistoryError):
    """No usable earlier declaration, or a scope the rollback must not touch; the message says which."""


@dataclass(frozen=True)
class RollbackPlan:
    model: str
    from_update: int | None  # None for --traffic: the declaration is today's, canary at 0 %
    current: dict[str, Any] | None
    restored: dict[str, Any]
    models: list[dict[str, Any]]

    @property
    def summary(self) -> str:
        if self.from_update is None:
            return f"canary traffic {((self.current or {}).get('canary') or {}).get('trafficPercent')}% -> 0%"
        return f"{version_label(self.current)} -> {version_label(self.restored)} (declaration of update {self.from_update})"


def _normalized(declaration: dict[str, Any] | None) -> Any:
    """Declarations compare by meaning (defaults filled in), falling back to their text for old shapes."""
    if declaration is None:
        return None
    try:
        return ModelDeployment.model_validate(declaration).model_dump(mode="json")
    except ValidationError:
        return json.loads(json.dumps(declaration, sort_keys=True))


def plan_rollback(
    history: list[Update], current_models: list[dict[str, Any]], name: str, to_version: int | None = None
) -> RollbackPlan:
    current = find_model(current_models, name)
    succeeded = [u for u in history if u.succeeded]
    if not succeeded:
        results = ", ".join(f"{u.version}: {u.kind} {u.result}" for u in history) or "none"
        raise RollbackError(f"the stack has no successful update to roll back to (updates: {results})")
    if to_version is not None:
        target = next((u for u in history if u.version == to_version), None)
        if target is None or not target.succeeded:
            found = "not in the history" if target is None else target.describe()
            raise RollbackError(
                f"update {to_version} is {found}; successful updates: {', '.join(str(u.version) for u in succeeded)}"
            )
        declaration = find_model(declared_models(target), name)
        if declaration is None:
            raise RollbackError(f"model {name!r} was not declared in update {to_version}")
        if _normalized(declaration) == _normalized(current):
            raise RollbackError(f"model {name!r} is already declared as in update {to_version}; nothing to restore")
        return _plan(name, target.version, current, declaration, current_models)
    absent_in: list[int] = []
    for update in succeeded:
        declaration = find_model(declared_models(update), name)
        if declaration is None:
            # Removed for a while and declared again later: an older declaration may still exist.
            absent_in.append(update.version)
            continue
        if _without_traffic(declaration) != _without_traffic(current):
            return _plan(name, update.version, current, declaration, current_models)
    if absent_in and len(absent_in) == len(succeeded):
        raise RollbackError(f"model {name!r} has no earlier version: no successful update declared it")
    without = f"; updates {', '.join(map(str, absent_in))} ran without it" if absent_in else ""
    raise RollbackError(
        f"model {name!r} has no earlier version: every successful update that declared it declared it as it is now, "
        f"up to the canary's traffic percent (pick one with --to){without}"
    )


def _without_traffic(declaration: dict[str, Any] | None) -> Any:
    """A declaration with its canary's traffic percent left out. Updates that differ from today only in
    that percent are steps of the same rollout: rolling back to one would send more traffic to the
    version being rolled back (after `--traffic` set it to 0, to the very state that was aborted)."""
    normalized = _normalized(declaration)
    if isinstance(normalized, dict) and isinstance(normalized.get("canary"), dict):
        normalized["canary"] = {k: v for k, v in normalized["canary"].items() if k not in ("traffic_percent", "trafficPercent")}
    return normalized


def plan_traffic_abort(current_models: list[dict[str, Any]], name: str) -> RollbackPlan:
    """The canary's traffic to 0: the stable version serves everything, the canary stays deployed."""
    current = find_model(current_models, name)
    if current is None:
        declared = ", ".join(str(m.get("name")) for m in current_models) or "none"
        raise RollbackError(f"the stack declares no model {name!r}; declared: {declared}")
    percent = (current.get("canary") or {}).get("trafficPercent")
    if not isinstance(percent, int) or not 0 < percent < 100:
        state = "declares no canary" if percent is None else f"has its canary at {percent}%"
        raise RollbackError(f"--traffic needs a model in canary (traffic between 1 and 99%); {name!r} {state}")
    return _plan(name, None, current, {**current, "canary": {**current["canary"], "trafficPercent": 0}}, current_models)


def _plan(
    name: str, version: int | None, current: dict[str, Any] | None, declaration: dict[str, Any], current_models: list[dict[str, Any]]
) -> RollbackPlan:
    models = json.loads(json.dumps(current_models))
    index = next((i for i, m in enumerate(models) if m.get("name") == name), None)
    if index is None:
        models.append(declaration)
    else:
        models[index] = declaration
    return RollbackPlan(model=name, from_update=version, current=current, restored=declaration, models=models)


def pending_changes(deployed: Update, config: dict[str, Any], model: str) -> list[str]:
    """What the stack file declares differently from the last successful update, `model` aside."""
    changes: list[str] = []
    for key in sorted(set(deployed.config) | set(config)):
        if key == MODELS_KEY:
            changes += _model_changes(declared_models(deployed) or [], config.get(key) or [], model, deployed.version)
            continue
        entry, value = deployed.config.get(key), config.get(key)
        if entry is None:
            changes.append(f"{key}: added since update {deployed.version}")
        elif key not in config:
            changes.append(f"{key}: removed since update {deployed.version}")
        elif not isinstance(entry, dict):
            raise RollbackError(f"update {deployed.version}: config {key} is {type(entry).__name__}, not a {{value, secret}} object")
        elif entry.get("secret") or (isinstance(value, dict) and set(value) == {"secure"}):
            if bool(entry.get("secret")) != (isinstance(value, dict) and set(value) == {"secure"}):
                changes.append(f"{key}: secret in one of the stack file and update {deployed.version}, plain in the other")
        elif _history_value(entry) != _file_value(value):
            changes.append(f"{key}: {_file_value(value)!r} now, {_history_value(entry)!r} in update {deployed.version}")
    return changes


def _model_changes(deployed: list[dict[str, Any]], declared: list[dict[str, Any]], model: str, version: int) -> list[str]:
    changes = []
    for name in sorted({str(m.get("name")) for m in [*deployed, *declared]} - {model}):
        before, now = find_model(deployed, name), find_model(declared, name)
        if before is None:
            changes.append(f"{MODELS_KEY} {name}: added since update {version}")
        elif now is None:
            changes.append(f"{MODELS_KEY} {name}: removed since update {version}")
        elif _normalized(before) != _normalized(now):
            fields = sorted(k for k in set(before) | set(now) if _file_value(before.get(k)) != _file_value(now.get(k)))
            changes.append(f"{MODELS_KEY} {name}: {', '.join(fields)} changed since update {version}")
    return changes


def _history_value(entry: dict[str, Any]) -> Any:
    """Objects as objects: `objectValue`, or (from CLIs that record only `value`) the JSON text in `value`."""
    if entry.get("objectValue") is not None:
        return json.loads(json.dumps(entry["objectValue"], sort_keys=True))
    value = entry.get("value")
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(json.dumps(json.loads(value), sort_keys=True))
        except json.JSONDecodeError:
            return value
    return value


def _file_value(value: Any) -> Any:
    """As Pulumi records it: objects as objects, everything else as the string the program reads."""
    if isinstance(value, (dict, list)):
        return json.loads(json.dumps(value, sort_keys=True))
    return value if isinstance(value, str) else json.dumps(value)


def config_change(plan: RollbackPlan) -> str:
    def text(declaration: dict[str, Any] | None) -> list[str]:
        return yaml.safe_dump(declaration, sort_keys=False).splitlines(keepends=True) if declaration else []

    source = "canary at 0%" if plan.from_update is None else f"update {plan.from_update}"
    return "".join(difflib.unified_diff(text(plan.current), text(plan.restored), f"{plan.model} (declared now)", f"{plan.model} ({source})"))


@dataclass
class Report:
    """What the command prints last: on stdout, once the outcome is known."""

    plan: RollbackPlan
    stack: str
    targets: list[str]
    dry_run: bool
    applied: bool = False
    result: str | None = None
    update: int | None = None
    file_restored: bool = False
    committed: bool = False
    preview: Any = None
    notes: list[str] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.plan.model,
            "stack": self.stack,
            "mode": "traffic" if self.plan.from_update is None else "declaration",
            "fromUpdate": self.plan.from_update,
            "current": self.plan.current,
            "restored": self.plan.restored,
            "configChange": config_change(self.plan),
            "targets": self.targets,
            "dryRun": self.dry_run,
            "preview": self.preview,
            "applied": self.applied,
            "result": self.result,
            "update": self.update,
            "fileRestored": self.file_restored,
            "committed": self.committed,
            "notes": self.notes or [],
        }

    def as_text(self) -> str:
        lines = [f"{self.plan.model}: {self.plan.summary}", config_change(self.plan).rstrip("\n")]
        lines.append(f"targets: {len(self.targets)} resources of {self.plan.model} (and their dependents)")
        if self.dry_run:
            lines.append(f"dry run: preview {self.result}; the stack file is unchanged")
        else:
            lines.append(f"update {self.update if self.update is not None else '(number unknown)'} {self.result}")
        lines += self.notes or []
        return "\n".join(lines)


def command_rollback(args: argparse.Namespace) -> int:
    project_dir = Path(args.project_dir)
    stack_models = StackModels(project_dir, args.stack)
    try:
        if args.commit:
            _check_committable(project_dir, stack_models.path, args.reason)
        history = read_history(args.history, project_dir, args.stack)
        current_models = stack_models.declarations()
        if args.traffic:
            plan = plan_traffic_abort(current_models, args.model)
        else:
            plan = plan_rollback(history, current_models, args.model, args.to)
        deployed = last_succeeded(history)
        pending = pending_changes(deployed, stack_models.config(), args.model)
        if pending and not args.include_pending:
            raise RollbackError(
                f"the stack file differs from the last successful update ({deployed.version}) in more than {args.model!r}; "
                f"apply or revert these first, or pass --include-pending: {'; '.join(pending)}"
            )
        edited = stack_models.edited_text(plan.models)  # validated before anything runs
        pulumi_cli.executable()
    except (HistoryError, StackFileError, ConfigError, pulumi_cli.PulumiError) as error:
        print(f"mlops rollback: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    targets = model_targets(project_dir, args.stack, args.model, [current_models, plan.models])
    report = Report(plan, args.stack, targets, dry_run=args.dry_run)
    code = _dry_run(args, stack_models, edited, report) if args.dry_run else _apply(args, stack_models, edited, report)
    print(json.dumps(report.as_json(), indent=2, sort_keys=True) if args.format == "json" else report.as_text())
    return code


def _dry_run(args: argparse.Namespace, stack_models: StackModels, edited: str, report: Report) -> int:
    """`pulumi preview` reads the stack file, so the edit is there only while the preview runs."""
    previous = stack_models.text()
    try:
        stack_models.write_text(edited)
        outcome = pulumi_cli.preview(Path(args.project_dir), args.stack, report.targets, as_json=args.format == "json")
    finally:
        stack_models.write_text(previous)
    report.result = "succeeded" if outcome.ok else "failed"
    if outcome.stdout:
        try:
            report.preview = json.loads(outcome.stdout)
        except json.JSONDecodeError:
            report.preview = outcome.stdout
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _apply(args: argparse.Namespace, stack_models: StackModels, edited: str, report: Report) -> int:
    project_dir, plan = Path(args.project_dir), report.plan
    message = f"mlops rollback {plan.model}: {plan.summary}" + (f": {args.reason}" if args.reason else "")
    applied = apply_model_change(project_dir, stack_models, edited, report.targets, message)
    report.applied, report.result, report.update = applied.succeeded, applied.result, applied.update
    report.file_restored = applied.file_restored
    notes: list[str] = []
    report.notes = notes
    if not applied.succeeded:
        notes.append(f"{stack_models.path.name} is restored to its state before the command")
        return EXIT_FAILED
    if not args.commit:
        notes.append(
            f"{stack_models.path.name} is changed but not committed: the next `pulumi up` from main would undo this "
            "rollback; commit it (or run with --commit --reason TEXT)"
        )
        return EXIT_OK
    error = _commit(project_dir, stack_models.path, f"rollback {plan.model}: {plan.summary}\n\n{args.reason}\n")
    report.committed = error is None
    if error is not None:
        notes.append(f"the update succeeded but committing {stack_models.path.name} failed: {error}; commit it by hand")
        return EXIT_FAILED
    return EXIT_OK


def _check_committable(project_dir: Path, path: Path, reason: str | None) -> None:
    """--commit is refused up front, not after the update, when it could not work."""
    if not reason:
        raise RollbackError("--commit needs --reason TEXT: the commit message says why the model was rolled back")
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=project_dir, capture_output=True, text=True)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise RollbackError(f"--commit: {project_dir} is not inside a git work tree, so {path.name} cannot be committed")


def _commit(project_dir: Path, path: Path, message: str) -> str | None:
    """Commit only the stack file (other staged or unstaged work stays as it is); the error text, or None."""
    for argv in (["git", "add", "--", path.name], ["git", "commit", "--quiet", "--message", message, "--", path.name]):
        completed = subprocess.run(argv, cwd=project_dir, capture_output=True, text=True)
        if completed.returncode != 0:
            said = (completed.stderr.strip() or completed.stdout.strip()).splitlines()
            return said[-1] if said else f"git {argv[1]} exited {completed.returncode}"
    return None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="restore a model's previous declaration (or --traffic: its canary to 0%%) and apply only that model",
    )
    parser.add_argument("model", help="model deployment name (mlops:models[].name)")
    parser.add_argument("--stack", required=True, help="stack name: edits Pulumi.<stack>.yaml")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--to", type=int, metavar="UPDATE_VERSION", help="restore the declaration of this update (default: the last that differed)")
    which.add_argument("--traffic", action="store_true", help="fast abort: set the model's canary traffic to 0%% (all traffic to the stable version)")
    parser.add_argument("--history", help="`pulumi stack history --json` output to read instead of calling the pulumi CLI")
    parser.add_argument("--include-pending", action="store_true", help="go ahead although other config differs from the last successful update")
    parser.add_argument("--dry-run", action="store_true", help="preview the targeted update (pulumi preview); leave the stack file as it is")
    parser.add_argument("--commit", action="store_true", help="after a successful update, git-commit the stack file (needs --reason)")
    parser.add_argument("--reason", help="why: goes into the update message and the commit message")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--project-dir", default=".", help="project directory holding Pulumi.yaml (default: .)")
    parser.set_defaults(func=command_rollback)
