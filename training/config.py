"""The training Job's settings: every input is a `TRAINING_*` variable the rendered Job sets
(plus MLflow's own `MLFLOW_TRACKING_URI` and the object store's standard credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitoring.env_settings import (
    Setting,
    choice,
    name_segment,
    non_negative_float,
    open_fraction,
    positive_int,
    read_settings,
    refuse_problems,
    store_uri,
    text,
)
from training.evaluation import METRICS

TASKS = ("classification", "regression")
DEFAULT_TRAINER = "training.trainers:SklearnTrainer"

SETTINGS = (
    Setting("TRAINING_MODEL", name_segment, "registered model name in MLflow (the InferenceService's model)", required=True),
    Setting("TRAINING_TASK", choice(TASKS), "classification or regression", required=True),
    Setting("TRAINING_METRIC", choice(sorted(METRICS)), "metric that decides between candidate and champion", required=True),
    Setting("TRAINING_MARGIN", non_negative_float, "how much worse than the champion the candidate may score", default=0.0),
    Setting("TRAINING_DATA", store_uri, "Parquet file or prefix of labelled training rows on the store"),
    Setting("TRAINING_PAYLOAD_ROOT", store_uri, "payload store root the collector writes to (joined with TRAINING_LABELS)"),
    Setting("TRAINING_LABELS", store_uri, "labels (request_id, label) joined with the collected payloads"),
    Setting("TRAINING_LABEL_COLUMN", text, "target column of TRAINING_DATA", default="label"),
    Setting("TRAINING_CHAMPION_ALIAS", name_segment, "registry alias of the current champion", default="champion"),
    Setting("TRAINING_SERVED_VERSION", name_segment, "version the InferenceService serves (champion when the alias is unset)"),
    Setting("TRAINING_CHALLENGER_ALIAS", name_segment, "alias given to an accepted candidate", default="challenger"),
    Setting("TRAINING_EXPERIMENT", text, "MLflow experiment of the training runs (default: the model name)"),
    Setting("TRAINING_HOLDOUT_FRACTION", open_fraction, "share of rows held out to compare candidate and champion", default=0.2),
    Setting("TRAINING_SEED", positive_int, "seed of the hold-out split and the trainer", default=42),
    Setting("TRAINING_TRAINER", text, "module:attribute of the Trainer class", default=DEFAULT_TRAINER),
    Setting("TRAINING_TRIGGER", text, "why this run started (schedule, drift key), recorded as a run tag", default="manual"),
    Setting("TRAINING_SUMMARY_PATH", text, "file the outcome is written to as JSON (for CI)"),
)


@dataclass(frozen=True)
class TrainingConfig:
    model: str
    task: str
    metric: str
    margin: float
    data: str | None
    payload_root: str | None
    labels: str | None
    label_column: str
    champion_alias: str
    served_version: str | None
    challenger_alias: str
    experiment: str | None
    holdout_fraction: float
    seed: int
    trainer: str
    trigger: str
    summary_path: str | None

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.model


def load_config(environ: Mapping[str, str]) -> TrainingConfig:
    values = read_settings("training", SETTINGS, environ)
    problems = []
    if not values["data"] and not values["payload_root"]:
        problems.append("set TRAINING_DATA, or TRAINING_PAYLOAD_ROOT with TRAINING_LABELS: there is nothing to train on")
    if bool(values["payload_root"]) != bool(values["labels"]):
        problems.append("TRAINING_PAYLOAD_ROOT and TRAINING_LABELS go together: payloads are only training rows once joined with labels")
    if METRICS.get(values["metric"]) and METRICS[values["metric"]].task != values["task"]:
        problems.append(f"TRAINING_METRIC={values['metric']!r} is a {METRICS[values['metric']].task} metric but TRAINING_TASK={values['task']!r}")
    if not environ.get("MLFLOW_TRACKING_URI", "").strip():
        problems.append("MLFLOW_TRACKING_URI is required: the registry the champion comes from and the candidate goes to")
    refuse_problems("training", problems)
    return TrainingConfig(**values)
