"""An sklearn model on the KServe 0.21 Python model server, as the platform's sklearn runtime serves it.

KServe's own `sklearnserver` package is not published on PyPI, so this is the same shape written on
`kserve.Model`: the model loads from `model.joblib` in `--model_dir`, and a prediction the model
cannot make answers 500 (`InferenceError`), as the sklearn runtime does. Request handling, routes and
the /metrics families are kserve's own. Run: python kserve_sklearn_server.py --model_name NAME
--model_dir DIR --http_port PORT.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import joblib
import kserve
import numpy as np
from kserve.errors import InferenceError
from kserve.model_server import parser as kserve_parser


class SklearnModel(kserve.Model):
    def __init__(self, name: str, model_dir: Path):
        super().__init__(name)
        self.model_dir = model_dir

    def load(self) -> bool:
        self._model = joblib.load(self.model_dir / "model.joblib")
        self.ready = True
        return self.ready

    async def predict(self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None) -> Any:
        try:
            return {"predictions": self._model.predict(np.asarray(payload["instances"], dtype=float)).tolist()}
        except (ValueError, KeyError, TypeError) as error:
            raise InferenceError(str(error)) from error


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(parents=[kserve_parser])
    arguments.add_argument("--model_dir", type=Path, required=True)
    args, _ = arguments.parse_known_args()
    model = SklearnModel(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer(http_port=args.http_port, enable_grpc=False, workers=1).start([model])
