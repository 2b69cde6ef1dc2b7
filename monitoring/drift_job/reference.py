"""Load the reference sample: a Parquet/CSV file or directory, or an MLflow run/model artifact."""

from __future__ import annotations

import tempfile

import pandas as pd

from monitoring.drift_job.status import MissingData
from monitoring.drift_job.storage import read_dataset

MLFLOW_SCHEMES = ("runs:/", "models:/")


def load_reference(uri: str) -> pd.DataFrame:
    if not uri.startswith(MLFLOW_SCHEMES):
        return read_dataset(uri, "reference sample")
    # Imported here: mlflow takes seconds to import and only MLflow URIs need it.
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="drift-reference-") as workdir:
        try:
            local_path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=workdir)
        except (MlflowException, OSError) as error:
            raise MissingData(f"cannot download the reference sample {uri!r} from MLflow: {error}") from error
        return read_dataset(local_path, f"reference sample {uri!r} (downloaded to)")
