"""The collector's settings, parsed once from a JSON/YAML file and `COLLECTOR_*` variables.

File keys are camelCase (`storeUri`, `maxBatchRecords`, `models[0].inferenceService`), like every
other config of the platform; an environment variable overrides the file key it names
(`COLLECTOR_MAX_BATCH_RECORDS` -> `maxBatchRecords`; `COLLECTOR_MODELS` holds the JSON list).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

ENV_PREFIX = "COLLECTOR_"
STORE_SCHEMES = ("s3://", "gs://", "file://", "/")
PATH_SEGMENT = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class ConfigError(ValueError):
    """The collector config is invalid; the message names every bad key, its value and what is allowed."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ModelSettings(_Settings):
    inference_service: str = Field(
        min_length=1, description="InferenceService name, as KServe sends it in `ce-inferenceservicename`."
    )
    model: str | None = Field(
        None, pattern=PATH_SEGMENT, description="Model name in the payload store; defaults to the InferenceService name."
    )
    version: str | None = Field(
        None,
        pattern=PATH_SEGMENT,
        description="Version used when the event carries no `mlops.platform/model-version` annotation.",
    )
    input_names: list[str] | None = Field(
        None, min_length=1, description="Feature names of positional (list) instances, in order."
    )
    output_names: list[str] | None = Field(
        None, min_length=1, description="Names of positional predictions (and of a single output), in order."
    )
    logger_mode: Literal["all", "request", "response"] = Field(
        "all", description="The InferenceService's `logger.mode`: which halves of an inference to wait for."
    )
    sample_rate: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of inferences stored, chosen by the inference id (so both halves of one "
        "inference are kept or both skipped, on any replica).",
    )

    @property
    def store_name(self) -> str:
        return self.model or self.inference_service


class CollectorConfig(_Settings):
    store_uri: str = Field(description="Payload store root: s3://bucket/prefix, gs://bucket/prefix or a local path.")
    spool_dir: Path = Field(description="Directory of the write-ahead log; must survive container restarts.")
    max_batch_records: int = Field(1000, ge=1, description="Rows per model and version that trigger a write.")
    max_batch_age_seconds: float = Field(60.0, gt=0, description="Oldest buffered row age that triggers a write.")
    pair_timeout_seconds: float = Field(
        30.0, gt=0, description="How long a request waits for its response (and back) before it is written alone."
    )
    max_event_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest accepted event body.")
    max_buffered_records: int = Field(
        100_000, ge=1, description="Rows held in memory before new events are refused with 503."
    )
    host: str = Field("0.0.0.0", description="Listen address.")
    port: int = Field(8080, ge=1, le=65535, description="Listen port.")
    shutdown_timeout_seconds: float = Field(
        20.0, gt=0, description="Time in-flight requests get after SIGTERM before the final drain."
    )
    s3_endpoint_url: str | None = Field(
        None, pattern=r"^https?://", description="S3 endpoint (MinIO, moto); AWS's own when unset."
    )
    models: list[ModelSettings] = Field(default_factory=list, description="The InferenceServices this collector serves.")

    @field_validator("store_uri")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(STORE_SCHEMES):
            raise ValueError(f"{value!r} is not a store root; use one of s3://bucket/prefix, gs://bucket/prefix, file:///path or /path")
        if value.startswith(("s3://", "gs://")) and not value.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError(f"{value!r} names no bucket")
        return value

    @model_validator(mode="after")
    def _unique_services(self) -> "CollectorConfig":
        names = [m.inference_service for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"models lists inferenceService {duplicates} more than once; list each once")
        return self

    def model_for(self, inference_service: str) -> ModelSettings | None:
        return next((m for m in self.models if m.inference_service == inference_service), None)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, field in CollectorConfig.model_fields.items():
        variable = ENV_PREFIX + name.upper()
        if variable not in environ:
            continue
        text = environ[variable]
        if name == "models":
            try:
                overrides[field.alias or name] = json.loads(text)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{variable} is not valid JSON ({error.msg} at position {error.pos}); give a JSON list of models") from error
        else:
            overrides[field.alias or name] = text
    return overrides


def _read_file(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read config file {str(path)!r}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML/JSON: {error}") from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of settings, not {type(document).__name__}")
    return document


def _describe(error: Mapping[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(f.alias or n for n, f in _section_fields(error["loc"]).items())
        return f"{path}: unknown key; allowed keys here: {allowed}"
    if error["type"] == "missing" and len(error["loc"]) == 1:
        return f"{path}: required (or set {ENV_PREFIX}{_env_name(error['loc'])})"
    if error["type"] == "missing":
        return f"{path}: required"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}={error['input']!r}: {message}"


def _section_fields(loc: tuple[Any, ...]) -> dict[str, Any]:
    return ModelSettings.model_fields if "models" in loc else CollectorConfig.model_fields


def _env_name(loc: tuple[Any, ...]) -> str:
    alias = str(loc[0])
    field = next((n for n, f in CollectorConfig.model_fields.items() if f.alias == alias), alias)
    return field.upper()


def load_config(path: Path | None, environ: Mapping[str, str] = os.environ) -> CollectorConfig:
    """Settings from `path` (if given) overridden by `COLLECTOR_*` variables, validated in one go."""
    document = _read_file(path) if path is not None else {}
    document.update(_env_overrides(environ))
    try:
        return CollectorConfig.model_validate(document)
    except ValidationError as error:
        problems = "\n".join(f"  - {_describe(e)}" for e in error.errors())
        raise ConfigError(f"invalid collector config ({error.error_count()} problem(s)):\n{problems}") from error
