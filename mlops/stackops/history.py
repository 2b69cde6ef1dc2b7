"""A stack's update history, and `mlops history MODEL`: how a model was declared in each update.

Read from `pulumi stack history --json` (or a file holding its output): a list of
`{version, kind, startTime, message, environment{git.head, ...}, config{KEY: {value, objectValue,
secret}}, result}`, newest first. History written by hand or by another tool can be anything,
so every shape is checked and a bad one is one line naming the entry and the key.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.project import EXIT_BAD_INPUT, EXIT_OK
from mlops.stackops import pulumi_cli
from mlops.stackops.stack_models import MODELS_KEY


class HistoryError(ValueError):
    """The history cannot be read or does not hold what is asked; the message says which and what to do."""


@dataclass(frozen=True)
class Update:
    """One entry of `pulumi stack history --json`."""

    version: int
    kind: str
    result: str
    config: dict[str, Any]
    start_time: str = ""
    message: str = ""
    git_head: str = ""

    @property
    def succeeded(self) -> bool:
        return self.kind == "update" and self.result == "succeeded"

    def describe(self) -> str:
        article = "an" if self.kind[:1] in "aeiou" else "a"
        return f"{article} {self.kind} that {self.result}"


def parse_history(document: Any) -> list[Update]:
    if not isinstance(document, list):
        raise HistoryError("stack history must be the JSON list `pulumi stack history --json` prints")
    updates = []
    for position, entry in enumerate(document):
        if not isinstance(entry, dict):
            raise HistoryError(f"history entry {position} is {type(entry).__name__}, not an object")
        config, environment = entry.get("config") or {}, entry.get("environment") or {}
        if not isinstance(config, dict) or not isinstance(environment, dict):
            raise HistoryError(f"history entry {position}: config and environment must be objects")
        try:
            version = int(entry["version"])
        except (KeyError, TypeError, ValueError) as error:
            raise HistoryError(f"history entry {position} has no integer version (got {entry.get('version')!r})") from error
        updates.append(
            Update(
                version=version,
                kind=str(entry.get("kind", "")),
                result=str(entry.get("result", "")),
                config=config,
                start_time=str(entry.get("startTime", "")),
                message=str(entry.get("message", "")),
                git_head=str(environment.get("git.head", "")),
            )
        )
    return sorted(updates, key=lambda u: u.version, reverse=True)


def load_history_file(path: Path) -> list[Update]:
    try:
        text = path.read_bytes().decode("utf-8")
        return parse_history(json.loads(text))
    except OSError as error:
        raise HistoryError(f"cannot read history {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise HistoryError(f"history {path} is not UTF-8 text (byte {error.start}); save the output of `pulumi stack history --json`") from error
    except json.JSONDecodeError as error:
        raise HistoryError(f"history {path} is not JSON: {error}") from error


def read_history(history_file: str | None, project_dir: Path, stack: str) -> list[Update]:
    """The history from `history_file`, else from the pulumi CLI."""
    if history_file:
        return load_history_file(Path(history_file))
    try:
        return parse_history(pulumi_cli.stack_history(project_dir, stack))
    except pulumi_cli.PulumiError as error:
        raise HistoryError(f"{error}; or pass --history FILE (from `pulumi stack history --json`)") from error


def declared_models(update: Update) -> list[dict[str, Any]] | None:
    """The `mlops:models` list an update ran with; None if that update had none."""
    entry = update.config.get(MODELS_KEY)
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise HistoryError(f"update {update.version}: config {MODELS_KEY} is {type(entry).__name__}, not a {{value, objectValue, secret}} object")
    if entry.get("secret") and entry.get("objectValue") is None and entry.get("value") is None:
        raise HistoryError(
            f"update {update.version} holds {MODELS_KEY} as a secret, which history omits; pass --history with the "
            "output of `pulumi stack history --json --show-secrets`"
        )
    value = entry.get("objectValue")
    if value is None:
        text = entry.get("value")
        try:
            value = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError as error:
            raise HistoryError(f"update {update.version}: {MODELS_KEY} value is not JSON: {error}") from error
    if not isinstance(value, list):
        raise HistoryError(f"update {update.version}: {MODELS_KEY} is {type(value).__name__}, not a list of model declarations")
    for position, model in enumerate(value):
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            raise HistoryError(f"update {update.version}: {MODELS_KEY}[{position}] is {model!r:.60}, not a declaration with a name")
    return value


def find_model(models: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    return next((m for m in models or [] if m.get("name") == name), None)


def last_succeeded(history: list[Update]) -> Update:
    for update in history:
        if update.succeeded:
            return update
    results = ", ".join(f"{u.version}: {u.kind} {u.result}" for u in history) or "none"
    raise HistoryError(f"the stack has no successful update (updates: {results})")


def version_label(declaration: dict[str, Any] | None) -> str:
    """How a declaration names what it serves: version 7, alias champion (version 3), or its artifact."""
    if declaration is None:
        return "not declared"
    reference = declaration.get("model") or {}
    if reference.get("alias"):
        resolved = reference.get("resolvedVersion")
        return f"alias {reference['alias']}" + (f" (version {resolved})" if resolved else "")
    if reference.get("version"):
        return f"version {reference['version']}"
    return str(reference.get("artifactUri") or "no model reference")


def model_timeline(history: list[Update], name: str) -> list[dict[str, Any]]:
    """One row per update, newest first: when, how it ended, from which commit, and the model as declared."""
    rows = []
    for update in history:
        declaration = find_model(declared_models(update), name)
        reference = (declaration or {}).get("model") or {}
        rows.append(
            {
                "update": update.version,
                "kind": update.kind,
                "time": update.start_time,
                "result": update.result,
                "commit": update.git_head,
                "message": update.message,
                "declared": declaration is not None,
                "version": reference.get("version") or reference.get("resolvedVersion"),
                "alias": reference.get("alias"),
                "artifact": reference.get("artifactUri"),
                "canaryPercent": ((declaration or {}).get("canary") or {}).get("trafficPercent"),
            }
        )
    return rows


def format_timeline(name: str, rows: list[dict[str, Any]]) -> str:
    header = ("UPDATE", "TIME", "RESULT", "COMMIT", "VERSION", "CANARY", "ARTIFACT", "MESSAGE")
    table = [header]
    for row in rows:
        served = "-" if not row["declared"] else (row["alias"] or "") + ("->" if row["alias"] and row["version"] else "") + (row["version"] or "")
        result = row["result"] if row["kind"] == "update" else f"{row['kind']} {row['result']}"
        canary = "-" if row["canaryPercent"] is None else f"{row['canaryPercent']}%"
        artifact = row["artifact"] or ("(not declared)" if not row["declared"] else "-")
        table.append((str(row["update"]), row["time"], result, row["commit"][:12] or "-", served, canary, artifact, row["message"]))
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1] for line in table]
    return f"{name}\n" + "\n".join(line.rstrip() for line in lines)


def command_history(args: argparse.Namespace) -> int:
    try:
        rows = model_timeline(read_history(args.history, Path(args.project_dir), args.stack), args.model)
    except HistoryError as error:
        print(f"mlops history: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not any(row["declared"] for row in rows):
        print(f"mlops history: no update of stack {args.stack!r} declared model {args.model!r}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.format == "json":
        print(json.dumps({"model": args.model, "stack": args.stack, "updates": rows}, indent=2))
    else:
        print(format_timeline(args.model, rows))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history", help="a model's declaration in each stack update: version/alias, artifact, canary %%, result, commit"
    )
    parser.add_argument("model", help="model deployment name (mlops:models[].name)")
    parser.add_argument("--stack", required=True, help="stack whose update history to read")
    parser.add_argument("--history", help="`pulumi stack history --json` output to read instead of calling the pulumi CLI")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--project-dir", default=".", help="project directory holding Pulumi.yaml (default: .)")
    parser.set_defaults(func=command_history)
