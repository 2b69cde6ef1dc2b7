"""Change model declarations inside `Pulumi.<stack>.yaml` and leave every other byte alone.

Stack files are written by hand: comments at any column, flow and block styles side by side,
`- name:` at the key's own indent or indented, quoted and plain scalars. A whole-document dump,
even ruamel.yaml's round trip, normalises indentation for the entire file. So the file is only
*parsed* as a whole (ruamel.yaml's composer gives each model's exact character span); each changed
model is round-tripped on its own (ruamel.yaml keeps its comments, quoting and flow style where
values did not change), re-indented to where it sat, and spliced back. The result is re-parsed
and must equal the intended config before anyone may write it.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarstring import ScalarString

from mlops.stackfiles import StackFileError

MODELS_KEY = "mlops:models"
# Wide enough that no value is folded onto a second line: a long URI stays on its line.
_NO_FOLDING = 1 << 16


@dataclass(frozen=True)
class _Indentation:
    """ruamel.yaml's indent settings: mapping step, sequence item step, and the dash's offset."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2


@dataclass(frozen=True)
class _ModelsBlock:
    items: list[MappingNode]
    flow: bool
    indentation: _Indentation
    dash_column: int


def edit_models(text: str, current: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> str:
    """`text` with `mlops:models` changed from `current` to `wanted`, byte-identical elsewhere.

    Models keep their places: changed ones are rewritten where they are, new ones are appended.
    Removing or reordering models is not an edit any command makes, so it is refused.
    """
    for index, (before, after) in enumerate(zip(current, wanted)):
        if before.get("name") != after.get("name"):
            raise StackFileError(
                f"{MODELS_KEY}[{index}] is {before.get('name')!r}; an edit may change or append models, not reorder them"
            )
    if len(wanted) < len(current):
        raise StackFileError(f"{MODELS_KEY}: an edit may change or append models, not remove them")
    block = _models_block(text)
    if len(block.items) != len(current):
        raise StackFileError(f"{MODELS_KEY}: the file holds {len(block.items)} models, the parsed config {len(current)}")
    splices: list[tuple[int, int, str]] = []
    for item, before, after in zip(block.items, current, wanted):
        if _plain(before) != _plain(after):
            start, end = item.start_mark.index, _end_index(item)
            splices.append((start, end, _rewritten(text[start:end], item.start_mark.column, after, block.indentation)))
    appended = wanted[len(current) :]
    if appended:
        splices.append(_appended(text, block, appended))
    for start, end, replacement in sorted(splices, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def parse_stack_text(text: str, name: str) -> dict[str, Any]:
    """The `config:` mapping of a stack file's text, or one line saying why it is not one."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise StackFileError(f"{name} is not valid YAML: {str(error).splitlines()[0]}") from error
    if document is None:
        return {}
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise StackFileError(f"{name}: expected a mapping with a `config:` mapping")
    return dict(document.get("config") or {})


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one step: a reader (or a crash) sees the old file or the new one, never half."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _models_block(text: str) -> _ModelsBlock:
    try:
        root = YAML(typ="rt").compose(text)
    except RuamelYAMLError as error:
        raise StackFileError(f"the stack file is not valid YAML: {str(error).splitlines()[0]}") from error
    config = _value_of(root, "config")
    models_key, models = _entry_of(config, MODELS_KEY)
    if not isinstance(models, SequenceNode):
        raise StackFileError(f"{MODELS_KEY} must be a list of model declarations")
    items = list(models.value)
    if not all(isinstance(item, MappingNode) for item in items):
        raise StackFileError(f"{MODELS_KEY}: every entry must be a mapping (name, model, ...)")
    indentation = _Indentation()
    if items and not models.flow_style:
        key_column = models_key.start_mark.column
        first = items[0].start_mark.column
        indentation = _Indentation(
            mapping=_mapping_step(items) or 2,
            sequence=first - key_column,
            offset=models.start_mark.column - key_column,
        )
    return _ModelsBlock(items, bool(models.flow_style), indentation, models.start_mark.column)


def _entry_of(node: Node | None, key: str) -> tuple[ScalarNode, Node]:
    if isinstance(node, MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return key_node, value
    raise StackFileError(f"the stack file has no `{key}` entry to edit")


def _value_of(node: Node | None, key: str) -> Node:
    return _entry_of(node, key)[1]


def _mapping_step(items: list[MappingNode]) -> int | None:
    """How far a nested block mapping is indented under its key, as the file writes it."""
    for item in items:
        for key, value in item.value:
            if isinstance(value, MappingNode) and not value.flow_style and value.value:
                return value.value[0][0].start_mark.column - key.start_mark.column
    return None


def _end_index(node: Node) -> int:
    """Where the node's own text ends. A block collection's end mark lies at the next token, past
    trailing comments and blank lines that belong to what follows; its last leaf's end does not."""
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        return _end_index(node.value[-1][1])
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return _end_index(node.value[-1])
    return node.end_mark.index


def _rewritten(item_text: str, column: int, wanted: dict[str, Any], indentation: _Indentation) -> str:
    """The item's text with its values changed to `wanted`; untouched values keep their text."""
    standalone = _dedented(" " * column + item_text, column)
    loader = YAML(typ="rt")
    loader.preserve_quotes = True
    document = loader.load(standalone)
    _merge(document, wanted)
    return _dumped(document, column, indentation)


def _appended(text: str, block: _ModelsBlock, models: list[dict[str, Any]]) -> tuple[int, int, str]:
    if not block.items or block.flow:
        raise StackFileError(
            f"{MODELS_KEY} is empty or a flow list; declare models as a block list (`- name: ...`) so one can be appended"
        )
    last = block.items[-1]
    column = last.start_mark.column
    dash = " " * block.dash_column + "-" + " " * (column - block.dash_column - 1)
    end = _end_index(last)
    added = "".join("\n" + dash + _dumped(CommentedMap(model), column, block.indentation) for model in models)
    return end, end, added


def _dedented(text: str, column: int) -> str:
    lines = text.splitlines(keepends=True)
    # Comment lines may sit left of the item (column 0); they lose only the spaces they have.
    return "".join(line[column:] if not line[:column].strip() else line.lstrip(" ") for line in lines)


def _dumped(document: Any, column: int, indentation: _Indentation) -> str:
    dumper = YAML(typ="rt")
    dumper.width = _NO_FOLDING
    dumper.indent(mapping=indentation.mapping, sequence=indentation.sequence, offset=indentation.offset)
    stream = io.StringIO()
    dumper.dump(document, stream)
    lines = stream.getvalue().rstrip("\n").split("\n")
    return "\n".join([lines[0], *[(" " * column + line) if line.strip() else line for line in lines[1:]]])


def _merge(target: CommentedMap, wanted: dict[str, Any]) -> None:
    for key in [key for key in target if key not in wanted]:
        del target[key]
    for key, value in wanted.items():
        if key in target:
            target[key] = _merged_value(target[key], value)
        else:
            target[key] = value


def _merged_value(current: Any, wanted: Any) -> Any:
    if isinstance(current, CommentedMap) and isinstance(wanted, dict):
        _merge(current, wanted)
        return current
    if isinstance(current, CommentedSeq) and isinstance(wanted, list) and len(current) == len(wanted):
        for index, value in enumerate(wanted):
            current[index] = _merged_value(current[index], value)
        return current
    if _plain(current) == _plain(wanted):
        return current
    if isinstance(current, ScalarString) and isinstance(wanted, str):
        # A quoted value stays quoted the same way: "7" -> "6", not 6 or '6'.
        return type(current)(wanted)
    return wanted


def _plain(value: Any) -> Any:
    """A value as JSON sees it, so a ruamel scalar equals the plain value it stands for (and 1 != true)."""
    return json.loads(json.dumps(value, sort_keys=True))
