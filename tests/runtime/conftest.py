"""Runtime tests share one interpreter, and MLflow's client keeps its tracking URI and active
experiment in module globals and copies them into os.environ (MLFLOW_TRACKING_URI,
MLFLOW_EXPERIMENT_ID): each test starts from the environment it was given."""

from __future__ import annotations

import os
import sys

import pytest


@pytest.fixture(autouse=True)
def clean_mlflow_client_state():
    before = {key: value for key, value in os.environ.items() if key.startswith("MLFLOW_")}
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        mlflow.set_tracking_uri(None)
        # No public call forgets the experiment chosen by set_experiment; it would follow the
        # next test to a server that has no experiment of that id.
        mlflow.tracking.fluent._active_experiment_id = None
    for key in [key for key in os.environ if key.startswith("MLFLOW_")]:
        del os.environ[key]
    os.environ.update(before)
