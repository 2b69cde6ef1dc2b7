"""One training run: split, train the candidate, score it and the champion on the same held-out
rows, log everything to one MLflow run, and register the candidate as the challenger only when the
decision accepts it. A refused candidate stays a logged run with its reason as a tag."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sklearn.model_selection import train_test_split

from monitoring.drift_job.status import SchemaMismatch
from training.config import TrainingConfig
from training.data import TrainingData
from training.evaluation import Verdict, decide, score
from training.trainers import load_trainer

MODEL_ARTIFACT = "model"
OUTCOME_TAG = "mlops.outcome"
REASON_TAG = "mlops.reason"


@dataclass(frozen=True)
class Outcome:
    model: str
    accepted: bool
    reason: str
    metric: str
    candidate: float
    champion: float | None
    margin: float
    champion_version: str | None
    version: str | None
    run_id: str
    train_rows: int
    holdout_rows: int

    def as_json(self) -> dict:
        fields = asdict(self)
        fields["outcome"] = "registered" if self.accepted else "refused"
        return fields


def _champion_version(client: mlflow.MlflowClient, config: TrainingConfig) -> str | None:
    """The version aliased as champion, else the version the InferenceService serves, else none
    (a model's first training run)."""
    try:
        return str(client.get_model_version_by_alias(config.model, config.champion_alias).version)
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
    return config.served_version


def _split(data: TrainingData, config: TrainingConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    counts = data.target.value_counts()
    stratify = data.target if config.task == "classification" and counts.min() >= 2 else None
    return train_test_split(data.features, data.target, test_size=config.holdout_fraction, random_state=config.seed, stratify=stratify)


def _champion_score(config: TrainingConfig, version: str, features: pd.DataFrame, target: pd.Series) -> float:
    champion = mlflow.pyfunc.load_model(f"models:/{config.model}/{version}")
    try:
        predicted = champion.predict(features)
    except MlflowException as error:
        raise SchemaMismatch(
            f"champion {config.model} version {version} does not accept the training columns {list(features.columns)}: {error.message}"
        ) from error
    return score(config.metric, target.to_numpy(), predicted)


def train_and_decide(config: TrainingConfig, data: TrainingData) -> Outcome:
    client = mlflow.MlflowClient()
    champion_version = _champion_version(client, config)
    train_x, holdout_x, train_y, holdout_y = _split(data, config)
    mlflow.set_experiment(config.experiment_name)
    with mlflow.start_run(run_name=f"{config.model}-{config.trigger}") as run:
        mlflow.set_tags({"mlops.model": config.model, "mlops.trigger": config.trigger, "mlops.champion_version": champion_version or ""})
        mlflow.log_params(
            {"trainer": config.trainer, "metric": config.metric, "margin": config.margin, "holdout_fraction": config.holdout_fraction,
             "seed": config.seed, **{f"rows.{i}": n for i, n in enumerate(data.sources.values())}}
        )  # fmt: skip
        trainer = load_trainer(config.trainer, config.task, config.seed)
        trainer.fit(train_x, train_y)
        candidate = score(config.metric, holdout_y.to_numpy(), trainer.predict(holdout_x))
        champion = _champion_score(config, champion_version, holdout_x, holdout_y) if champion_version else None
        mlflow.log_metrics({f"candidate_{config.metric}": candidate, **({f"champion_{config.metric}": champion} if champion is not None else {})})
        verdict: Verdict = decide(config.metric, config.margin, candidate, champion)
        model_uri = trainer.log_model(MODEL_ARTIFACT, infer_signature(train_x, trainer.predict(train_x.head(100))), train_x.head(5))
        version = _register(client, config, model_uri, verdict) if verdict.accepted else None
        mlflow.set_tags({OUTCOME_TAG: "registered" if version else "refused", REASON_TAG: verdict.reason, "mlops.registered_version": version or ""})
        return Outcome(
            config.model, verdict.accepted, verdict.reason, config.metric, candidate, champion, config.margin,
            champion_version, version, run.info.run_id, len(train_x), len(holdout_x),
        )  # fmt: skip


def _register(client: mlflow.MlflowClient, config: TrainingConfig, model_uri: str, verdict: Verdict) -> str:
    registered = mlflow.register_model(model_uri, config.model, tags={"mlops.reason": verdict.reason})
    client.set_registered_model_alias(config.model, config.challenger_alias, registered.version)
    return str(registered.version)
