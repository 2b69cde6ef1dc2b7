"""Train the dev stack's demo model, register it in the platform's MLflow, write its reference sample.

`make local-up` runs this (in .venv-runtime) against the MLflow and object store of the local
cluster, through port-forwards; it prints one JSON object the dev stack's model entry is filled
from: the registered version, the S3 URI of its artifacts (what KServe's storage initializer
downloads) and the S3 URI of the reference sample the drift job compares payloads with.

The model is a scikit-learn classifier of a synthetic churn table, small enough to train in a
second. `--shift` moves the features, so that a second version (the canary) differs visibly.

Environment: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (the MLflow admin),
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and MLFLOW_S3_ENDPOINT_URL (the object store).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

FEATURES = ("tenure_months", "monthly_charges", "support_calls", "contract_months")
LABEL_COLUMN = "label"
ROWS = 2000
# Column names the payload collector gives a V2 request's inputs and outputs (serving/collector/
# correlator.py). MLServer's MLflow runtime answers a NumPy prediction with one output named
# "output-1" (SeldonIO/MLServer 1.7.1: mlserver/codecs/utils.py DefaultOutputPrefix,
# SingleInputRequestCodec.encode_response; runtimes/mlflow/mlserver_mlflow/runtime.py predict).
PREDICTION_COLUMN = "output.output-1"
# Where MLflow's proxied artifacts (`mlflow-artifacts:/...`) live in the server's destination.
PROXIED_ARTIFACTS_SCHEME = "mlflow-artifacts:"


@dataclass(frozen=True)
class DemoModel:
    """What the dev stack's model entry needs (Pulumi config keys in camelCase)."""

    registeredModel: str
    version: str
    artifactUri: str
    referenceDataUri: str


def churn_table(seed: int, shift: float, rows: int = ROWS) -> pd.DataFrame:
    """Synthetic customers: short tenure, high charges and many support calls churn more."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "tenure_months": rng.gamma(2.0, 12.0, rows) * (1 - shift / 2),
            "monthly_charges": rng.normal(65.0 + 20 * shift, 20.0, rows).clip(10, None),
            "support_calls": rng.poisson(1.5 + 2 * shift, rows).astype("float64"),
            "contract_months": rng.choice([1.0, 12.0, 24.0], rows, p=[0.5, 0.3, 0.2]),
        }
    )
    score = (
        -0.06 * table["tenure_months"] + 0.03 * table["monthly_charges"] + 0.5 * table["support_calls"]
        - 0.08 * table["contract_months"] - 1.0
    )
    table[LABEL_COLUMN] = (rng.random(rows) < 1 / (1 + np.exp(-score))).astype("int64")
    return table


def reference_sample(table: pd.DataFrame, predictions: np.ndarray) -> pd.DataFrame:
    """The training rows under the payload store's column names, with predictions and labels."""
    sample = table[list(FEATURES)].rename(columns={name: f"input.{name}" for name in FEATURES})
    sample[PREDICTION_COLUMN] = predictions
    sample[LABEL_COLUMN] = table[LABEL_COLUMN].to_numpy()
    return sample


def artifact_location(download_uri: str, artifacts_destination: str) -> str:
    """The object-store URI of a proxied MLflow artifact (KServe reads the bucket, not MLflow)."""
    if not download_uri.startswith(PROXIED_ARTIFACTS_SCHEME):
        return download_uri
    relative = download_uri.removeprefix(PROXIED_ARTIFACTS_SCHEME).lstrip("/")
    return f"{artifacts_destination.rstrip('/')}/{relative}"


def upload(uri: str, body: bytes) -> None:
    import boto3

    parts = urlsplit(uri)
    if parts.scheme != "s3":
        raise SystemExit(f"demo_model: --reference-uri {uri!r} must be an s3:// URI (the platform's object store)")
    client = boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL"))
    client.put_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"), Body=body)


def train_and_register(model_name: str, artifacts_destination: str, reference_uri: str, seed: int, shift: float) -> DemoModel:
    import mlflow
    import sklearn
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    table = churn_table(seed, shift)
    features = table[list(FEATURES)]
    model = LogisticRegression(max_iter=1000).fit(features, table[LABEL_COLUMN])
    mlflow.set_experiment(f"{model_name}-demo")
    with mlflow.start_run(run_name=f"{model_name}-seed{seed}-shift{shift}"):
        mlflow.log_params({"seed": seed, "shift": shift, "rows": len(table)})
        mlflow.log_metric("train_accuracy", float(model.score(features, table[LABEL_COLUMN])))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=model_name,
            input_example=features.head(3),
            # Stated rather than inferred: inference re-imports the model in a subprocess (slow).
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}", f"pandas=={pd.__version__}"],
        )
        version = str(info.registered_model_version)
        sample = reference_sample(table, model.predict(features))
        buffer = io.BytesIO()
        sample.to_parquet(buffer, index=False)
        location = reference_uri.format(version=version)
        upload(location, buffer.getvalue())
        mlflow.log_param("reference_data_uri", location)
    download_uri = MlflowClient().get_model_version_download_uri(model_name, version)
    return DemoModel(model_name, version, artifact_location(download_uri, artifacts_destination), location)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="demo_model.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", required=True, help="the platform's MLflow (e.g. a port-forward: http://127.0.0.1:5000)")
    parser.add_argument("--model-name", default="churn-classifier", help="registered model name (default: churn-classifier)")
    parser.add_argument(
        "--artifacts-destination", default="s3://mlflow-artifacts", help="the MLflow server's --artifacts-destination (default: s3://mlflow-artifacts)"
    )
    parser.add_argument(
        "--reference-uri",
        default="s3://mlflow-artifacts/reference/churn-classifier/v{version}.parquet",
        help="where the reference sample goes; {version} is the registered version",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the synthetic table (default: 1)")
    parser.add_argument("--shift", type=float, default=0.0, help="feature shift in [0, 1] (0: the first version's data)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.shift <= 1.0:
        parser.error(f"--shift {args.shift} is outside [0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    demo = train_and_register(args.model_name, args.artifacts_destination, args.reference_uri, args.seed, args.shift)
    print(json.dumps(asdict(demo)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
