"""Read and rewrite the `mlops:models` declarations of a `Pulumi.<stack>.yaml`, nothing else.

ruamel.yaml is not a dependency, and a pyyaml round trip of the whole file would drop its
comments and reorder it. So only the text block of the `mlops:models` key is replaced by a fresh
dump of the new list; every other line (comments, other keys, secrets) stays byte for byte.
Comments inside the models block itself are not kept. A new list is validated as the whole stack
config before anything is written, so a command never leaves an invalid stack file behind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from mlops.stackfiles import ProjectFiles, StackFileError
from stacks.config import load_stack_config

MODELS_KEY = "mlops:models"
_CONFIG_LINE = re.compile(r"^config:\s*(#.*)?$")


class ModelNotDeclared(StackFileError):
    """The stack declares no model of that name."""


class StackModels:
    """The model declarations of one stack, as camelCase dicts exactly as the file spells them."""

    def __init__(self, project_dir: Path, stack: str):
        self.files = ProjectFiles(project_dir)
        self.stack = stack
        self.path = self.files.stack_file(stack)

    def declarations(self) -> list[dict[str, Any]]:
        models = self.files.raw_stack_config(self.stack).get(MODELS_KEY) or []
        if not isinstance(models, list):
            raise StackFileError(f"{self.path.name}: {MODELS_KEY} must be a list of model declarations")
        return models

    def environment(self) -> str:
        return str(self.files.raw_stack_config(self.stack).get("mlops:environment") or "dev")

    def index_of(self, name: str, models: list[dict[str, Any]] | None = None) -> int:
        models = self.declarations() if models is None else models
        for index, model in enumerate(models):
            if model.get("name") == name:
                return index
        declared = ", ".join(str(m.get("name")) for m in models) or "none"
        raise ModelNotDeclared(f"stack {self.stack!r} declares no model {name!r} in {MODELS_KEY}; declared: {declared}")

    def declaration(self, name: str) -> dict[str, Any]:
        models = self.declarations()
        return models[self.index_of(name, models)]

    def validate(self, models: list[dict[str, Any]]) -> None:
        """Raise `ConfigError` unless the stack config with these models is valid."""
        load_stack_config(self.files.stack_config(self.stack, {MODELS_KEY: json.dumps(models)}))

    def write(self, models: list[dict[str, Any]]) -> None:
        self.validate(models)
        self.path.write_text(replace_models_block(self.path.read_text(), models))


def models_block(models: list[dict[str, Any]], indent: str) -> str:
    if not models:
        return f"{indent}{MODELS_KEY}: []\n"
    body = yaml.safe_dump(models, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True)
    return f"{indent}{MODELS_KEY}:\n" + "".join(f"{indent}  {line}\n" for line in body.splitlines())


def replace_models_block(text: str, models: list[dict[str, Any]]) -> str:
    """`text` with the `mlops:models` block (or a new one at the end of `config:`) set to `models`."""
    lines = text.splitlines(keepends=True)
    key = re.compile(rf"^(\s+){re.escape(MODELS_KEY)}:")
    start = next((i for i, line in enumerate(lines) if key.match(line)), None)
    if start is not None:
        indent = key.match(lines[start]).group(1)  # type: ignore[union-attr]
        end = start + 1
        while end < len(lines) and (not lines[end].strip() or _inside_block(lines[end], len(indent))):
            end += 1
        # Blank lines closing the block belong to what follows it.
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1
        return "".join(lines[:start]) + models_block(models, indent) + "".join(lines[end:])
    config = next((i for i, line in enumerate(lines) if _CONFIG_LINE.match(line)), None)
    if config is None:
        prefix = text if text.endswith("\n") or not text else text + "\n"
        return prefix + "config:\n" + models_block(models, "  ")
    end = config + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
        end += 1
    head = "".join(lines[:end])
    if head and not head.endswith("\n"):
        head += "\n"
    return head + models_block(models, "  ") + "".join(lines[end:])


def _inside_block(line: str, key_indent: int) -> bool:
    """Deeper than the key, or a list item at the key's own indent (YAML's indentless sequences,
    which PyYAML writes)."""
    return _indent(line) > key_indent or (_indent(line) == key_indent and line.lstrip().startswith("- "))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))
