"""The drift job's settings, parsed once from command-line options and `DRIFT_*` variables.

Every option has a variable named after it (`--window-hours` -> `DRIFT_WINDOW_HOURS`), so a CronJob
can set either; an option given on the command line wins over its variable. `--stattest` and
`--column-type` repeat; their variables hold the pairs separated by spaces or commas
(`DRIFT_STATTEST="amount=psi,country=chisquare"`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from monitoring.drift.columns import COLUMN_TYPES
from monitoring.env_settings import http_url, positive_int

ENV_PREFIX = "DRIFT_"
PATH_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
STORE_SCHEMES = ("s3://", "gs://", "file://", "/")
REFERENCE_SCHEMES = (*STORE_SCHEMES, "runs:/", "models:/")
Task = Literal["classification", "regression"]


class RetrainPolicy(str, Enum):
    NEVER = "never"
    ON_DRIFT = "on_drift"
    ON_DATASET_DRIFT = "on_dataset_drift"


class ConfigError(ValueError):
    """Invalid drift job settings; the message names every bad option, its value and what is allowed."""


@dataclass(frozen=True)
class DriftJobConfig:
    model: str
    model_version: str
    reference: str
    payload_root: str
    window_hours: int
    pushgateway: str
    labels: str | None = None
    report_root: str | None = None
    drift_share_threshold: float = 0.5
    feature_threshold: float | None = None
    stattests: Mapping[str, str] = field(default_factory=dict)
    column_types: Mapping[str, str] = field(default_factory=dict)
    retrain_webhook: str | None = None
    retrain_policy: RetrainPolicy = RetrainPolicy.NEVER
    retrain_webhook_attempts: int = 4
    retrain_webhook_backoff_seconds: float = 2.0
    min_rows: int = 50
    task: Task | None = None
    prediction_column: str | None = None
    retrain_webhook_secret: str | None = None
    retrain_webhook_event_type: str | None = None
    retrain_webhook_token: str | None = None
    retrain_job_template: str | None = None

    @property
    def reports_root(self) -> str:
        return self.report_root or self.payload_root


@dataclass(frozen=True)
class _Option:
    flag: str
    parse: Callable[[str], Any]
    help: str
    required: bool = False
    repeated: bool = False

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.dest.upper()


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _segment(value: str) -> str:
    if not PATH_SEGMENT.match(value):
        raise ValueError("must be letters, digits, '.', '_' or '-' (a payload store path segment)")
    return value


def _uri(schemes: Sequence[str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not value.startswith(tuple(schemes)):
            raise ValueError(f"must start with one of {', '.join(schemes)}")
        return value.rstrip("/") if value.startswith(STORE_SCHEMES) and value != "/" else value

    return parse


def _fraction(value: str) -> float:
    number = _float(value)
    if not 0 < number <= 1:
        raise ValueError("must be a fraction in (0, 1]")
    return number


def _positive_float(value: str) -> float:
    number = _float(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


def _non_negative_float(value: str) -> float:
    number = _float(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError as error:
        raise ValueError("must be a number") from error


def _choice(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _stattest(value: str) -> tuple[str, str]:
    column, separator, method = value.partition("=")
    if not separator or not column.strip() or not method.strip():
        raise ValueError("must be COLUMN=STATTEST, e.g. amount=psi")
    return column.strip(), method.strip()


def _column_type(value: str) -> tuple[str, str]:
    column, separator, column_type = (part.strip() for part in value.partition("="))
    if not separator or not column or column_type not in COLUMN_TYPES:
        raise ValueError(f"must be COLUMN=TYPE with TYPE one of {', '.join(COLUMN_TYPES)}, e.g. visits=num")
    return column, column_type


OPTIONS = (
    _Option("--model", _segment, "model name, as in the payload store", required=True),
    _Option("--model-version", _segment, "model version, as in the payload store", required=True),
    _Option(
        "--reference",
        _uri(REFERENCE_SCHEMES),
        "reference sample: a Parquet/CSV file or directory (local path, file://, s3://, gs://) or an MLflow "
        "artifact (runs:/<run_id>/<path>, models:/<name>/<version>/<path>; needs MLFLOW_TRACKING_URI)",
        required=True,
    ),
    _Option("--payload-root", _uri(STORE_SCHEMES), "payload store root the collector writes to", required=True),
    _Option("--window-hours", positive_int, "length of the current window, ending now", required=True),
    _Option("--pushgateway", http_url, "Pushgateway URL, e.g. http://pushgateway:9091", required=True),
    _Option("--labels", _uri(STORE_SCHEMES), "ground-truth labels (Parquet/CSV with request_id, label)"),
    _Option("--report-root", _uri(STORE_SCHEMES), "where reports go (default: the payload root)"),
    _Option("--drift-share-threshold", _fraction, "share of drifted features that makes the dataset drifted"),
    _Option("--feature-threshold", _positive_float, "drift threshold of every feature (default: per stattest)"),
    _Option("--stattest", _stattest, "COLUMN=STATTEST, overriding the default test of a column", repeated=True),
    _Option(
        "--column-type",
        _column_type,
        "COLUMN=TYPE (num, cat or text), for a column whose type Evidently's inference leaves out or gets wrong",
        repeated=True,
    ),
    _Option("--retrain-webhook", http_url, "URL that receives a POST when the retraining policy triggers"),
    _Option("--retrain-policy", _choice([p.value for p in RetrainPolicy]), "when to call the retraining webhook"),
    _Option("--retrain-webhook-attempts", positive_int, "webhook attempts before giving up"),
    _Option("--retrain-webhook-backoff", _non_negative_float, "seconds before the first webhook retry, doubling"),
    _Option("--min-rows", positive_int, "fewest rows in the window for a verdict"),
    _Option("--task", _choice(["classification", "regression"]), "the model's task; required with --labels"),
    _Option("--prediction-column", _text, "output column that is the prediction (default: the only one)"),
    _Option("--retrain-webhook-secret", _text, "HMAC-SHA256 key that signs the webhook body (set the variable from a Secret)"),
    _Option("--retrain-webhook-event-type", _text, "send GitHub's repository_dispatch envelope with this event_type"),
    _Option("--retrain-webhook-token", _text, "bearer token of the webhook, e.g. a GitHub token (set the variable from a Secret)"),
    _Option("--retrain-job-template", _text, "file holding the training Job manifest to create when retraining triggers"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.drift_job",
        description="Compare a model version's recent payloads with its reference sample; push drift "
        "metrics, write reports, trigger retraining. Every option can also be set as DRIFT_<OPTION>.",
    )
    for option in OPTIONS:
        parser.add_argument(
            option.flag,
            dest=option.dest,
            action="append" if option.repeated else "store",
            metavar=option.dest.upper(),
            help=f"{option.help} [{option.variable}]" + (" (required)" if option.required else ""),
        )
    return parser


def _raw_values(option: _Option, given: Any, environ: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """(where it came from, the raw texts) of one option, or None when neither is set."""
    if given is not None:
        return option.flag, given if option.repeated else [given]
    if option.variable in environ and environ[option.variable].strip():
        text = environ[option.variable]
        return option.variable, re.split(r"[\s,]+", text.strip()) if option.repeated else [text]
    return None


def load_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> DriftJobConfig:
    """Settings from `argv` over `environ`, validated in one go (every problem reported at once)."""
    namespace = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for option in OPTIONS:
        raw = _raw_values(option, getattr(namespace, option.dest), environ)
        if raw is None:
            if option.required:
                problems.append(f"{option.flag} (or {option.variable}) is required: {option.help}")
            continue
        source, texts = raw
        parsed = []
        for text in texts:
            try:
                parsed.append(option.parse(text))
            except ValueError as error:
                problems.append(f"{source}={text!r}: {error}")
        values[option.dest] = parsed if option.repeated else parsed[0] if parsed else None
    problems.extend(_cross_checks(values))
    if str(values.get("reference", "")).startswith(("runs:/", "models:/")) and not environ.get("MLFLOW_TRACKING_URI"):
        problems.append(f"--reference={values['reference']!r} is an MLflow artifact URI; set MLFLOW_TRACKING_URI to the tracking server")
    if problems:
        raise ConfigError("invalid drift job settings:\n" + "\n".join(f"  - {p}" for p in problems))
    if "stattest" in values:
        values["stattests"] = dict(values.pop("stattest"))
    if "column_type" in values:
        values["column_types"] = dict(values.pop("column_type"))
    if "retrain_policy" in values:
        values["retrain_policy"] = RetrainPolicy(values["retrain_policy"])
    if "retrain_webhook_backoff" in values:
        values["retrain_webhook_backoff_seconds"] = values.pop("retrain_webhook_backoff")
    return DriftJobConfig(**values)


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    problems = []
    policy = values.get("retrain_policy") or RetrainPolicy.NEVER.value
    trigger = values.get("retrain_webhook") or values.get("retrain_job_template")
    if policy != RetrainPolicy.NEVER.value and not trigger:
        problems.append(f"--retrain-policy={policy!r} needs --retrain-webhook (or DRIFT_RETRAIN_WEBHOOK) or --retrain-job-template")
    if values.get("retrain_webhook") and values.get("retrain_job_template"):
        problems.append("--retrain-webhook and --retrain-job-template are both set; retraining has one trigger, keep one")
    if policy == RetrainPolicy.NEVER.value and trigger:
        flag = "--retrain-webhook" if values.get("retrain_webhook") else "--retrain-job-template"
        problems.append(
            f"{flag} is set but --retrain-policy is 'never', so it would never be called; "
            "set --retrain-policy to on_drift or on_dataset_drift, or drop the trigger"
        )
    if values.get("labels") and not values.get("task"):
        problems.append("--labels needs --task (classification or regression) to choose the performance metrics")
    for option, what in (("stattest", "test"), ("column_type", "type")):
        columns = [column for column, _ in values.get(option) or []]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            flag = "--" + option.replace("_", "-")
            problems.append(f"{flag} names column(s) {repeated} more than once; give one {what} per column")
    return problems
