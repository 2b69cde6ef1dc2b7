"""Real model servers for runtime tests: MLServer 1.7.1 serving an MLflow model, and the KServe 0.21
Python server serving an sklearn model, each on free loopback ports with its log in the caller's
directory. MLServer runs from its own virtualenv (`make .venv-mlserver/.installed`, or MLSERVER_VENV):
MLServer 1.7.1 needs fastapi<0.116 and the runtime lock has kserve's fastapi 0.165.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.runtime.servers import STARTUP_TIMEOUT_SECONDS, _launch, _ServerProcess, free_port, require_binary, wait_until_answering

REPO_ROOT = Path(__file__).resolve().parents[2]
MLSERVER_VENV = Path(os.environ.get("MLSERVER_VENV", REPO_ROOT / ".venv-mlserver"))
KSERVE_SKLEARN_SERVER = Path(__file__).with_name("kserve_sklearn_server.py")
# Loading a model imports mlflow and sklearn: slower than the other servers' start.
MODEL_SERVER_STARTUP_SECONDS = max(STARTUP_TIMEOUT_SECONDS, 90.0)


class _ModelServer(_ServerProcess):
    """A model server process; `launch` returns at once so that several servers load their models
    side by side, `wait_ready` waits for the model."""

    ready_path: str

    def wait_ready(self) -> "_ModelServer":
        wait_until_answering(f"{self.url}{self.ready_path}", self.process, self.log_path, MODEL_SERVER_STARTUP_SECONDS)
        return self


class MLServer(_ModelServer):
    """`mlserver start` with one MLflow model; inference on `url`, Prometheus metrics on `metrics_address`."""

    metrics_address: str

    @classmethod
    def launch(cls, workdir: Path, model_name: str, model_uri: Path, version: str) -> "MLServer":
        binary = require_binary(MLSERVER_VENV / "bin" / "mlserver", "make .venv-mlserver/.installed (or set MLSERVER_VENV)")
        home = workdir / f"mlserver-{model_name}-{version}"
        home.mkdir(parents=True, exist_ok=True)
        http_port, metrics_port = free_port(), free_port()
        # One process: no parallel inference workers to fork on a 2-core machine.
        settings = {"host": "127.0.0.1", "http_port": http_port, "grpc_port": free_port(), "metrics_port": metrics_port, "parallel_workers": 0}
        (home / "settings.json").write_text(json.dumps(settings))
        model_settings = {"name": model_name, "implementation": "mlserver_mlflow.MLflowRuntime", "parameters": {"uri": str(model_uri)}}
        (home / "model-settings.json").write_text(json.dumps(model_settings))
        log_path = workdir / f"mlserver-{model_name}-{version}.log"
        process = _launch([str(binary), "start", str(home)], log_path, home)
        server = cls(process, f"127.0.0.1:{http_port}", log_path)
        server.metrics_address = f"127.0.0.1:{metrics_port}"
        server.ready_path = f"/v2/models/{model_name}/ready"
        return server


class KServeSklearnServer(_ModelServer):
    """The KServe Python server with one sklearn model (`model.joblib` in `model_dir`); /metrics on `url`."""

    @property
    def metrics_address(self) -> str:
        return self.address

    @classmethod
    def launch(cls, workdir: Path, model_name: str, model_dir: Path) -> "KServeSklearnServer":
        port = free_port()
        log_path = workdir / f"kserve-{model_name}.log"
        command = [sys.executable, str(KSERVE_SKLEARN_SERVER), f"--model_name={model_name}", f"--model_dir={model_dir}", f"--http_port={port}"]
        process = _launch(command, log_path, workdir)
        server = cls(process, f"127.0.0.1:{port}", log_path)
        server.ready_path = f"/v1/models/{model_name}"
        return server
