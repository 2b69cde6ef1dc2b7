"""Read and change the `mlops:models` declarations of a `Pulumi.<stack>.yaml`, nothing else.

Every command that edits a stack file (`models resolve`, `canary promote`, `rollback`) goes
through `StackModels.write`: the new declarations are validated as the whole stack config, the
file text is edited in place by `stackfile_edit` (byte-identical outside the changed models),
the edited text is parsed again and must hold exactly the intended config and pass validation,
and only then is the file replaced, atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops.stackfiles import ProjectFiles, StackFileError, config_strings
from mlops.stackops.stackfile_edit import MODELS_KEY, edit_models, parse_stack_text, write_atomically
from stacks.config import load_stack_config

__all__ = ["MODELS_KEY", "ModelNotDeclared", "StackModels"]


class ModelNotDeclared(StackFileError):
    """The stack declares no model of that name."""


class StackModels:
    """The model declarations of one stack, as camelCase dicts exactly as the file spells them."""

    def __init__(self, project_dir: Path, stack: str):
        self.files = ProjectFiles(project_dir)
        self.stack = stack
        self.path = self.files.stack_file(stack)

    def text(self) -> str:
        if not self.path.is_file():
            raise StackFileError(f"stack {self.stack!r} has no {self.path.name}; stacks here: {', '.join(self.files.stack_names())}")
        try:
            return self.path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise StackFileError(f"{self.path.name} is not UTF-8 text (byte {error.start})") from error

    def config(self) -> dict[str, Any]:
        return parse_stack_text(self.text(), self.path.name)

    def declarations(self) -> list[dict[str, Any]]:
        models = self.config().get(MODELS_KEY) or []
        if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
            raise StackFileError(f"{self.path.name}: {MODELS_KEY} must be a list of model declarations (mappings)")
        return models

    def environment(self) -> str:
        return str(self.config().get("mlops:environment") or "dev")

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

    def edited_text(self, models: list[dict[str, Any]]) -> str:
        """The stack file's text with `models` declared, checked as the file that would be written."""
        self.validate(models)
        text = self.text()
        config = parse_stack_text(text, self.path.name)
        edited = edit_models(text, self.declarations(), models)
        written = parse_stack_text(edited, self.path.name)
        intended = {**config, MODELS_KEY: models}
        if _plain(written) != _plain(intended):
            changed = sorted(k for k in set(written) | set(intended) if _plain(written.get(k)) != _plain(intended.get(k)))
            raise StackFileError(f"{self.path.name}: editing {MODELS_KEY} would also change {', '.join(changed)}; nothing written")
        load_stack_config(config_strings(written))
        return edited

    def write(self, models: list[dict[str, Any]]) -> None:
        self.write_text(self.edited_text(models))

    def write_text(self, text: str) -> None:
        """Replace the file with `text` (from `edited_text`, or a copy of `text()` taken earlier) atomically."""
        write_atomically(self.path, text)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))
