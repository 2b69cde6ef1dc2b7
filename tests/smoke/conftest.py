"""Post-deploy smoke tests: what a platform engineer checks after `pulumi up`.

They run against the cluster `KUBECONFIG` points at (kubectl on PATH), through pytest-testinfra's
local host, and are skipped, with the reason, when there is no such cluster.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import testinfra

from tests.runtime.servers import free_port


def cluster_unavailable_reason() -> str | None:
    """Why the smoke tests cannot run here, or None when a cluster answers."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        return "KUBECONFIG is not set: smoke tests need a deployed cluster"
    missing = [path for path in kubeconfig.split(os.pathsep) if path and not Path(path).is_file()]
    if missing:
        return f"KUBECONFIG points at {missing}, which do not exist"
    if shutil.which("kubectl") is None:
        return "kubectl is not on PATH"
    probe = subprocess.run(["kubectl", "version", "--request-timeout=5s"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"the cluster in KUBECONFIG does not answer: {probe.stderr.strip()[:200]}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    smoke = [item for item in items if "tests/smoke/" in str(item.fspath).replace(os.sep, "/")]
    if not smoke:
        return
    reason = cluster_unavailable_reason()
    if reason is not None:
        for item in smoke:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def host() -> testinfra.host.Host:
    return testinfra.get_host("local://")


@pytest.fixture(scope="session")
def secret_value(host):
    def read(namespace: str, name: str, key: str) -> str:
        escaped = key.replace(".", "\\.")
        result = host.run("kubectl -n %s get secret %s -o jsonpath={.data.%s}", namespace, name, escaped)
        assert result.rc == 0, result.stderr
        return base64.b64decode(result.stdout).decode()

    return read


@contextmanager
def port_forward(namespace: str, target: str, remote_port: int) -> Iterator[str]:
    """`kubectl port-forward` to a Service; yields the local base URL."""
    port = free_port()
    process = subprocess.Popen(
        ["kubectl", "-n", namespace, "port-forward", target, f"{port}:{remote_port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1.0)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    raise RuntimeError(f"port-forward to {namespace}/{target} exited: {process.stdout.read().decode()}") from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def forward():
    return port_forward
