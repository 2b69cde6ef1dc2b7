"""Helpers shared by the payload collector tests: KServe-shaped events, the collector as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import PROJECT_DIR
from tests.runtime.servers import MotoServer, free_port, wait_until_answering

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
STARTUP_TIMEOUT_SECONDS = 30.0


def binary_headers(
    event_id: str,
    event_type: str,
    service: str = "iris",
    version: str | None = None,
    time_text: str = "2026-03-04T05:06:07.123456789Z",
) -> dict[str, str]:
    """Headers as KServe's logger sends them (binary mode, percent-encoded extension values)."""
    headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": event_type,
        "ce-source": f"http://{service}-predictor-00001-deployment-abc",
        "ce-time": time_text,
        "ce-inferenceservicename": service,
        "ce-namespace": "mlops-serving",
        "ce-component": "predictor",
        "ce-endpoint": "default",
        "ce-metadata": "{}",
    }
    if version is not None:
        annotations = json.dumps({"mlops.platform/model-version": version}, separators=(",", ":"))
        headers["ce-annotations"] = annotations.replace("%", "%25").replace('"', "%22")
    return headers


def structured_body(event_id: str, event_type: str, data: Any, service: str = "iris", version: str | None = None) -> bytes:
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "type": event_type,
        "source": f"http://{service}-predictor",
        "time": "2026-03-04T05:06:07Z",
        "inferenceservicename": service,
        "namespace": "mlops-serving",
        "component": "predictor",
        "datacontenttype": "application/json",
        "data": data,
    }
    if version is not None:
        envelope["annotations"] = json.dumps({"mlops.platform/model-version": version})
    return json.dumps(envelope).encode()


def v1_pair(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A one-instance V1 request and its response, with values derived from `index`."""
    features = [float(index), index / 2, 1.5, 0.25]
    return {"instances": [features]}, {"predictions": [index % 3]}


@dataclass
class CollectorProcess:
    """`python -m serving.collector` in a subprocess, as the container runs it."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @classmethod
    def start(cls, settings: Mapping[str, str], log_path: Path) -> "CollectorProcess":
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTOR_")}
        env.update(MotoServer.AWS_ENV)
        env.update(settings)
        env["COLLECTOR_HOST"] = "127.0.0.1"
        env["COLLECTOR_PORT"] = str(port)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "serving.collector"], cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        collector = cls(process, f"http://127.0.0.1:{port}", log_path)
        wait_until_answering(f"{collector.url}/ready", process, log_path, STARTUP_TIMEOUT_SECONDS)
        return collector

    def terminate(self, timeout: float = 30.0) -> bool:
        """SIGTERM; True when the process finished its shutdown (uvicorn re-raises the signal at the end)."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in self.log()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def read_local_store(root: Path) -> pa.Table | None:
    files = sorted(p for p in root.rglob("*.parquet") if not p.name.startswith("."))
    tables = [pq.read_table(p) for p in files]
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def read_s3_store(client: Any, bucket: str, prefix: str) -> tuple[list[str], pa.Table | None]:
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if item["Key"].endswith(".parquet")
    ]
    tables = [pq.read_table(pa.BufferReader(client.get_object(Bucket=bucket, Key=key)["Body"].read())) for key in keys]
    return keys, pa.concat_tables(tables, promote_options="permissive") if tables else None
