"""The `config:` declarations of Pulumi.yaml, derived from the stack config schema.

Pulumi.yaml must declare every key the program reads with type, default and description; deriving
them from the schema keeps the two from drifting (a test compares them).
"""

from __future__ import annotations

from typing import Any

from stacks.config.schema import StackConfig


def declared_config() -> dict[str, dict[str, Any]]:
    defaults = StackConfig().model_dump(by_alias=True, mode="json")
    declarations: dict[str, dict[str, Any]] = {}
    for field in StackConfig.model_fields.values():
        default = defaults[field.alias]
        entry: dict[str, Any] = {}
        # Pulumi's project config types are string, integer, boolean and array; objects go untyped.
        if isinstance(default, bool):
            entry["type"] = "boolean"
        elif isinstance(default, str):
            entry["type"] = "string"
        elif isinstance(default, int):
            entry["type"] = "integer"
        elif isinstance(default, list):
            entry["type"] = "array"
            entry["items"] = {"type": "object"}
        entry["description"] = field.description
        entry["default"] = default
        declarations[field.alias] = entry
    return declarations
