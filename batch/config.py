"""The batch scoring Job's settings: `BATCH_*` variables the rendered CronJob sets (plus
`MLFLOW_TRACKING_URI` and the object store's standard credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitoring.env_settings import Setting, http_url, name_segment, positive_int, read_settings, refuse_problems, store_uri, text

SETTINGS = (
    Setting("BATCH_MODEL", name_segment, "registered model name in MLflow", required=True),
    Setting("BATCH_MODEL_VERSION", name_segment, "registered version the InferenceService serves", required=True),
    Setting("BATCH_INPUT", store_uri, "Parquet prefix whose partitions are scored", required=True),
    Setting("BATCH_OUTPUT", store_uri, "prefix the scored partitions are written to", required=True),
    Setting("BATCH_PUSHGATEWAY", http_url, "Pushgateway URL, e.g. http://pushgateway:9091", required=True),
    Setting("BATCH_CHUNK_ROWS", positive_int, "rows scored at a time (memory follows it)", default=50_000),
    Setting("BATCH_PREDICTION_COLUMN", text, "name of the prediction column in the output", default="prediction"),
)


@dataclass(frozen=True)
class BatchConfig:
    model: str
    model_version: str
    input: str
    output: str
    pushgateway: str
    chunk_rows: int
    prediction_column: str

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model}/{self.model_version}"


def load_config(environ: Mapping[str, str]) -> BatchConfig:
    values = read_settings("batch scoring", SETTINGS, environ)
    problems = []
    source, target = values["input"], values["output"]
    if source and target and (target == source or target.startswith(source.rstrip("/") + "/")):
        problems.append(f"BATCH_OUTPUT={target!r} is inside BATCH_INPUT={source!r}: scored files would become input partitions")
    if not environ.get("MLFLOW_TRACKING_URI", "").strip():
        problems.append("MLFLOW_TRACKING_URI is required: the registry the model version is loaded from")
    refuse_problems("batch scoring", problems)
    return BatchConfig(**values)
