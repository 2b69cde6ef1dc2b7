"""Parse the `mlops:` keys of a stack's config once, into a `StackConfig`, or fail with every problem.

Pulumi hands a program its config as strings keyed `namespace:key` (objects as JSON text); this
module is the only place that sees those strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from stacks.config.rules import Problem, cross_section_problems
from stacks.config.schema import TOP_LEVEL_KEYS, StackConfig

NAMESPACE = "mlops"


class ConfigError(ValueError):
    """The stack config is invalid; `problems` lists each key path, bad value and what is allowed."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{lines}")

    def __reduce__(self) -> tuple[type, tuple[list[Problem]]]:
        # Rebuilt from its problems when a render shard hands the error to its parent process.
        return (ConfigError, (self.problems,))


def load_stack_config(raw: Mapping[str, str]) -> StackConfig:
    """Validate the `mlops:` entries of a Pulumi config map; other namespaces are ignored."""
    document: dict[str, Any] = {}
    problems: list[Problem] = []
    for full_key, text in sorted(raw.items()):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if key not in TOP_LEVEL_KEYS:
            problems.append(
                Problem(full_key, text, f"unknown key; allowed keys: {', '.join(f'{NAMESPACE}:{k}' for k in TOP_LEVEL_KEYS)}")
            )
            continue
        document[key] = _decode(text)
    if problems:
        raise ConfigError(problems)
    try:
        config = StackConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError([_problem_from(e) for e in error.errors()]) from error
    problems = cross_section_problems(config)
    if problems:
        raise ConfigError(problems)
    return config


def _decode(text: str) -> Any:
    """Config values are strings; objects, arrays, numbers and booleans arrive as JSON text."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _path(loc: tuple[Any, ...]) -> str:
    path = f"{NAMESPACE}:{loc[0]}" if loc else f"{NAMESPACE}:"
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _problem_from(error: Mapping[str, Any]) -> Problem:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return Problem(_path(loc), error["input"], f"unknown key; allowed keys here: {', '.join(allowed)}")
    message = str(error["msg"]).removeprefix("Value error, ")
    return Problem(_path(loc), error["input"], message)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The camelCase keys of the section at `loc`, found by walking the schema's field types."""
    model: type[BaseModel] = StackConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return []
        model = _section_type(field.annotation)
    return [f.alias for f in model.model_fields.values() if f.alias]


def _section_type(annotation: Any) -> type[BaseModel]:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        for inner in getattr(candidate, "__args__", ()):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    raise TypeError(f"no config section type in {annotation!r}")
