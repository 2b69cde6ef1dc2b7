"""A registered scikit-learn model and scoring inputs for the batch scoring test and benchmark.

The model is registered in a real MLflow registry (SQLite store, local artifacts: what `mlflow`
itself uses without a server) and scores the fraud-like rows of `payload_samples`, whose columns
the model's signature names.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from tests.runtime.payload_samples import COUNTRIES

MODEL = "fraud-detector"


def scoring_rows(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(rows, dtype=np.int64) + seed * 10_000_000,
            "amount": rng.normal(100.0, 20.0, rows),
            "age": rng.integers(20, 70, rows).astype(float),
            "country": rng.choice(COUNTRIES, rows),
        }
    )


def register_model(workdir: Path) -> tuple[str, str]:
    """(tracking URI, run id) of version 1 of MODEL: a logistic regression on amount, age, country."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    # Artifacts beside the database, not in ./mlruns of whatever directory the test runs from.
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(f"batch-{workdir.name}", artifact_location=(workdir / "artifacts").as_uri()))
    features = scoring_rows(2000, seed=99)[["amount", "age", "country"]]
    labels = (features["amount"] > 110).astype(int)
    pipeline = Pipeline(
        [
            ("columns", ColumnTransformer([("categorical", OneHotEncoder(), ["country"]), ("numeric", StandardScaler(), ["amount", "age"])])),
            ("estimator", LogisticRegression()),
        ]
    ).fit(features, labels)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(pipeline, name="model", registered_model_name=MODEL, signature=infer_signature(features, pipeline.predict(features)))
    return tracking_uri, run.info.run_id


def parquet_bytes(frame: pd.DataFrame, row_group_size: int | None = None) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, row_group_size=row_group_size)
    return buffer.getvalue()
