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


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping as Pulumi's loader does
    (Pulumi reads stack files with gopkg.in/yaml.v3, which fails with "mapping key ... already
    defined"); PyYAML alone keeps the last value silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is defined twice (first on line {first})", key_node.start_mark
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def read_yaml_file(path: Path) -> Any:
    """A YAML file's one document, or a StackFileError naming the file, the line and the problem."""
    try:
        return yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path.name}:{mark.line + 1}" if mark is not None else path.name
        raise StackFileError(f"{where}: {error.problem or error.context}") from error
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name}: not valid YAML ({error})") from error


class ProjectFiles:
    def __init__(self, project_dir: Path):
        self.project_dir = project_dir
        project_file = project_dir / "Pulumi.yaml"
        if not project_file.is_file():
            raise StackFileError(f"no Pulumi.yaml in {project_dir}")
        self.project = read_yaml_file(project_file)
        if not isinstance(self.project, dict) or not isinstance(self.project.get("name"), str):
            raise StackFileError(f"{project_file.name}: expected a mapping with a string `name`")
        self.project_name: str = self.project["name"]

    def stack_names(self) -> list[str]:
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.project_dir.glob("Pulumi.*.yaml"))

    def stack_file(self, stack: str) -> Path:
        return self.project_dir / f"Pulumi.{stack}.yaml"

    def raw_stack_config(self, stack: str) -> dict[str, Any]:
        path = self.stack_file(stack)
        if not path.is_file():
            raise StackFileError(f"stack {stack!r} has no {path.name}; stacks here: {', '.join(self.stack_names())}")
        document = read_yaml_file(path)
        if document is None:
            return {}
        if not isinstance(document, dict):
            raise StackFileError(f"{path.name}:1: expected a mapping with a `config:` key, got a {type(document).__name__}")
        config = document.get("config")
        if config is None:
            return {}
        if not isinstance(config, dict):
            line = _line_of_key(path, "config")
            raise StackFileError(
                f"{path.name}:{line}: `config:` must be a mapping of NAMESPACE:KEY to values, got a {type(config).__name__}"
            )
        return dict(config)

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
    if len(parts) == 1:
        # `pulumi config set KEY VALUE` stores a top-level value as the string given; the program
        # decodes objects itself (pulumi.Config.get_object), as stacks.config.load does.
        values[top] = text
        return
    value = path_value(text)
    # Like `pulumi config set --path`, missing maps and lists on the way are created, and an index
    # one past a list's end appends (pkg/resource/config/map.go, setValue).
    container = values[top] = json.loads(json.dumps(values.get(top, [] if parts[1][1] is not None else {})))
    try:
        for (name, index), (_, next_index) in zip(parts[1:-1], parts[2:]):
            container = _set(container, name, index, [] if next_index is not None else {}, keep=True)
        name, index = parts[-1]
        _set(container, name, index, value, keep=False)
    except (IndexError, KeyError, TypeError, AttributeError) as error:
        raise StackFileError(f"--config {path!r}: no such element in {top} ({error})") from error


def _set(container: Any, name: str | None, index: str | None, value: Any, keep: bool) -> Any:
    """Set (or, with keep, fetch-or-create) one path element; returns the element."""
    if index is None:
        if keep and name in container:
            return container[name]
        container[name] = value
        return value
    position = int(index)
    if position == len(container):
        container.append(value)
    elif keep:
        return container[position]
    else:
        container[position] = value
    return value


_GO_INT = re.compile(r"^[+-]?[0-9]+$")
_INT64 = range(-(2**63), 2**63)


def path_value(text: str) -> Any:
    """The value `pulumi config set --path KEY VALUE` stores inside an object.

    Pulumi's CLI (pkg/resource/config/map.go, adjustObjectValue, v3.x) turns "true"/"false" into
    booleans and text that Go's strconv.Atoi accepts into integers, except text longer than one
    character starting with "0" (kept as a string so "0123" keeps its zero); everything else,
    "1.33" included, is stored as a string. A JSON object or array is taken as JSON, which is what
    `pulumi config set --path --json` stores (an object value is kept as-is by the same function).
    """
    if text in ("true", "false"):
        return text == "true"
    if len(text) > 1 and text[0] == "0":
        return text
    if _GO_INT.match(text) and int(text) in _INT64:
        return int(text)
    if text.startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise StackFileError(f"--config value {text!r} starts like JSON but does not parse: {error.msg}") from error
    return text


def _line_of_key(path: Path, key: str) -> int:
    """Line of the value of a top-level key (the file has parsed already)."""
    root = yaml.compose(path.read_text(), Loader=_StrictLoader)
    for key_node, value_node in root.value:
        if key_node.value == key:
            return value_node.start_mark.line + 1
    return 1


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
