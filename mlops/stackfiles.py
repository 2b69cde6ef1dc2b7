"""Read a Pulumi project the way the CLI would: `Pulumi.yaml` and `Pulumi.<stack>.yaml`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

SECRET_PLACEHOLDER = "[secret]"
_PATH_PART = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]")


class StackFileError(ValueError):
    """A stack file or a --config override cannot be read."""


class ProjectFiles:
    def __init__(self, project_dir: Path):
        self.project_dir = project_dir
        project_file = project_dir / "Pulumi.yaml"
        if not project_file.is_file():
            raise StackFileError(f"no Pulumi.yaml in {project_dir}")
        self.project = yaml.safe_load(project_file.read_text())
        self.project_name: str = self.project["name"]

    def stack_names(self) -> list[str]:
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.project_dir.glob("Pulumi.*.yaml"))

    def stack_file(self, stack: str) -> Path:
        return self.project_dir / f"Pulumi.{stack}.yaml"

    def raw_stack_config(self, stack: str) -> dict[str, Any]:
        path = self.stack_file(stack)
        if not path.is_file():
            raise StackFileError(f"stack {stack!r} has no {path.name}; stacks here: {', '.join(self.stack_names())}")
        return dict((yaml.safe_load(path.read_text()) or {}).get("config") or {})

    def stack_config(self, stack: str, overrides: dict[str, str]) -> dict[str, str]:
        """Config as Pulumi hands it to the program: `ns:key` -> string (objects as JSON text)."""
        values = self.raw_stack_config(stack)
        for assignment, value in overrides.items():
            _apply_override(values, assignment, value)
        return config_strings(values)


def config_strings(values: dict[str, Any]) -> dict[str, str]:
    """A stack file's `config:` values as Pulumi hands them to the program: strings, objects as JSON text."""
    return {key: _as_config_string(value) for key, value in sorted(values.items())}


def parse_overrides(assignments: list[str]) -> dict[str, str]:
    """`--config KEY=VALUE` pairs, as `pulumi config set [--path]` takes them."""
    overrides: dict[str, str] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or ":" not in key:
            raise StackFileError(f"--config {assignment!r}: expected NAMESPACE:KEY=VALUE, e.g. mlops:cloud=gcp")
        overrides[key] = value
    return overrides


def _apply_override(values: dict[str, Any], path: str, text: str) -> None:
    namespace, _, rest = path.partition(":")
    parts = [(m.group(1), m.group(2)) for m in _PATH_PART.finditer(rest)]
    if not parts or "".join(m.group(0) for m in _PATH_PART.finditer(rest)) != rest:
        raise StackFileError(f"--config {path!r}: cannot parse the key path")
    top = f"{namespace}:{parts[0][0]}"
    value = _decode(text)
    if len(parts) == 1:
        values[top] = value
        return
    # Like `pulumi config set --path`, missing maps on the way are created.
    container = values[top] = json.loads(json.dumps(values.get(top, {})))
    try:
        for name, index in parts[1:-1]:
            container = container[int(index)] if index is not None else container.setdefault(name, {})
        name, index = parts[-1]
        if index is not None:
            container[int(index)] = value
        else:
            container[name] = value
    except (IndexError, KeyError, TypeError, AttributeError) as error:
        raise StackFileError(f"--config {path!r}: no such element in {top} ({error})") from error


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _without_ciphertext(value: Any) -> Any:
    """`pulumi config set --secret --path` stores a secret inside an object as `{secure: ...}`;
    offline it reads as the placeholder, like a secret top-level value."""
    if _is_secure(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {key: _without_ciphertext(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_ciphertext(item) for item in value]
    return value


def _as_config_string(value: Any) -> str:
    value = _without_ciphertext(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)
