"""Trainers: the one interface the training Job needs from a framework, and the scikit-learn reference.

A trainer is a class built with `(task, seed)` that fits on a DataFrame and a target, predicts on a
DataFrame, and logs itself to the active MLflow run with a given signature. Any framework fits behind
it (point TRAINING_TRAINER at `package.module:Class` in an image that has the package).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np
import pandas as pd


class Trainer(Protocol):
    def __init__(self, task: str, seed: int) -> None: ...

    def fit(self, features: pd.DataFrame, target: pd.Series) -> None: ...

    def predict(self, features: pd.DataFrame) -> np.ndarray: ...

    def log_model(self, name: str, signature: Any, input_example: pd.DataFrame) -> str:
        """Log the fitted model to the active run; return its model URI."""
        ...


class SklearnTrainer:
    """One-hot encoded categorical columns and scaled numeric ones, then a logistic regression
    (classification) or ridge regression: a sound baseline that trains in seconds."""

    def __init__(self, task: str, seed: int) -> None:
        self.task, self.seed = task, seed
        self.pipeline: Any = None

    def fit(self, features: pd.DataFrame, target: pd.Series) -> None:
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        # Columns by name, not by a dtype selector: MLflow's safe (skops) format only loads
        # scikit-learn types it trusts, and the selector is not one of them.
        numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
        categorical = [c for c in features.columns if c not in numeric]
        columns = ColumnTransformer([("categorical", OneHotEncoder(handle_unknown="ignore"), categorical), ("numeric", StandardScaler(), numeric)])
        estimator = LogisticRegression(max_iter=1000, random_state=self.seed) if self.task == "classification" else Ridge(random_state=self.seed)
        self.pipeline = Pipeline([("columns", columns), ("estimator", estimator)]).fit(features, target)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict(features)

    def log_model(self, name: str, signature: Any, input_example: pd.DataFrame) -> str:
        import mlflow.sklearn

        return mlflow.sklearn.log_model(self.pipeline, name=name, signature=signature, input_example=input_example).model_uri


def load_trainer(reference: str, task: str, seed: int) -> Trainer:
    """The trainer class named `module:attribute`, built; ValueError naming the reference otherwise."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"TRAINING_TRAINER={reference!r}: must be module:Class, e.g. training.trainers:SklearnTrainer")
    try:
        trainer_class = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"TRAINING_TRAINER={reference!r}: cannot be imported ({error})") from error
    return trainer_class(task, seed)
