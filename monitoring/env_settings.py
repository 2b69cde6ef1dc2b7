"""Settings of a runtime Job read from environment variables, validated in one go.

The training and batch Jobs take every input from the variables their rendered manifest sets (no
arguments to keep in step with it). Each `Setting` names its variable, how to parse it and whether
it is required; `read_settings` reports every bad or missing variable at once, each on one line
naming the variable, its value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STORE_SCHEMES = ("s3://", "gs://", "file://", "/")


class SettingsError(ValueError):
    """Invalid settings; the message lists every problem, one per line."""


@dataclass(frozen=True)
class Setting:
    variable: str
    parse: Callable[[str], Any]
    help: str
    required: bool = False
    default: Any = None

    @property
    def field(self) -> str:
        return self.variable.split("_", 1)[1].lower()


def read_settings(what: str, settings: Sequence[Setting], environ: Mapping[str, str]) -> dict[str, Any]:
    """{field: parsed value} for every setting (default when unset); SettingsError lists all problems."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in settings:
        text = environ.get(setting.variable, "").strip()
        if not text:
            if setting.required:
                problems.append(f"{setting.variable} is required: {setting.help}")
            values[setting.field] = setting.default
            continue
        try:
            values[setting.field] = setting.parse(text)
        except ValueError as error:
            problems.append(f"{setting.variable}={text!r}: {error}")
    refuse_problems(what, problems)
    return values


def refuse_problems(what: str, problems: Sequence[str]) -> None:
    """Raise SettingsError listing `problems`, if there are any."""
    if problems:
        raise SettingsError(f"invalid {what} settings:\n" + "\n".join(f"  - {p}" for p in problems))


def text(value: str) -> str:
    return value


def name_segment(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
        raise ValueError("must be letters, digits, '.', '_' or '-'")
    return value


def store_uri(value: str) -> str:
    if not value.startswith(STORE_SCHEMES):
        raise ValueError(f"must start with one of {', '.join(STORE_SCHEMES)}")
    return value.rstrip("/") if value != "/" else value


def http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as error:
        raise ValueError("must be a whole number") from error
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError as error:
        raise ValueError("must be a number") from error
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def open_fraction(value: str) -> float:
    number = non_negative_float(value)
    if not 0 < number < 1:
        raise ValueError("must be a fraction strictly between 0 and 1")
    return number


def choice(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse
