"""Real servers for tests: Prometheus, Pushgateway, Alertmanager and moto (S3), each on a free loopback port.

Every server runs as a subprocess in a directory the caller owns (a pytest `tmp_path`), writes its
log there, and is stopped with `stop()` (or by leaving its `with` block). A missing binary raises
`MissingServerBinary` naming the package to install: CI installs them, so a test needing one must
fail, not skip. Nothing here imports a runtime-only package at module level, so the IaC suite (which
renders the platform's rules and Alertmanager config) starts the same servers.

    with PushgatewayServer.start(tmp_path) as gateway, PrometheusServer.start(
        tmp_path, scrape_targets=[gateway.address], rule_files=sorted(RULES_DIR.glob("*.yaml"))
    ) as prometheus:
        prometheus.query("up")
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
PUSHGATEWAY_BINARY = Path("/usr/bin/prometheus-pushgateway")
PROMTOOL_BINARY = Path("/usr/bin/promtool")
ALERTMANAGER_BINARY = Path("/usr/bin/prometheus-alertmanager")
AMTOOL_BINARY = Path("/usr/bin/amtool")
MOTO_SERVER_BINARY = Path(sys.executable).parent / "moto_server"
STARTUP_TIMEOUT_SECONDS = 30.0


class MissingServerBinary(FileNotFoundError):
    """A server binary the test needs is not installed; the message says how to install it."""


def require_binary(path: Path, install_hint: str) -> Path:
    if not os.access(path, os.X_OK):
        raise MissingServerBinary(f"{path} is not installed or not executable; install it with: {install_hint}")
    return path


def promtool() -> Path:
    return require_binary(PROMTOOL_BINARY, "apt-get install -y prometheus")


def amtool() -> Path:
    return require_binary(AMTOOL_BINARY, "apt-get install -y prometheus-alertmanager")


def free_port() -> int:
    """A port free right now on 127.0.0.1 (the OS picks it; the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    """Poll `url` until it answers 200; fail early with the server's log if the process exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args[0]} exited with {process.returncode} before {url} answered; log:\n{_tail(log_path)}"
            )
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s (last: {last}); log:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


@dataclass
class _ServerProcess:
    """A server subprocess listening on `address` (host:port); a context manager that stops it."""

    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> "_ServerProcess":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()


def _launch(command: Sequence[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, cwd=cwd)


class PushgatewayServer(_ServerProcess):
    @classmethod
    def start(cls, workdir: Path) -> "PushgatewayServer":
        binary = require_binary(PUSHGATEWAY_BINARY, "apt-get install -y prometheus-pushgateway")
        address = f"127.0.0.1:{free_port()}"
        log_path = workdir / "pushgateway.log"
        process = _launch([str(binary), f"--web.listen-address={address}"], log_path, workdir)
        server = cls(process, address, log_path)
        wait_until_answering(f"{server.url}/-/ready", process, log_path, STARTUP_TIMEOUT_SECONDS)
        return server

    def metrics_text(self) -> str:
        response = httpx.get(f"{self.url}/metrics", timeout=5.0)
        response.raise_for_status()
        return response.text


class PrometheusServer(_ServerProcess):
    """Prometheus scraping `scrape_targets` every second with `honor_labels: true` (as the platform's
    Pushgateway ServiceMonitor does), plus any further `scrape_configs` jobs, and evaluating
    `rule_files` every second."""

    @classmethod
    def start(
        cls,
        workdir: Path,
        scrape_targets: Sequence[str] = (),
        rule_files: Sequence[Path] = (),
        interval: str = "1s",
        alertmanagers: Sequence[str] = (),
        scrape_configs: Sequence[dict[str, Any]] = (),
    ) -> "PrometheusServer":
        binary = require_binary(PROMETHEUS_BINARY, "apt-get install -y prometheus")
        home = workdir / "prometheus"
        home.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": list(scrape_targets)}]}
            ]
            if scrape_targets
            else [],
        }
        config["scrape_configs"] += list(scrape_configs)
        if alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
        config_path = home / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        address = f"127.0.0.1:{free_port()}"
        log_path = workdir / "prometheus.log"
        process = _launch(
            [
                str(binary),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address={address}",
            ],
            log_path,
            home,
        )
        server = cls(process, address, log_path)
        wait_until_answering(f"{server.url}/-/ready", process, log_path, STARTUP_TIMEOUT_SECONDS)
        return server

    def api(self, path: str, **params: str) -> httpx.Response:
        """GET `/api/v1/<path>`; the caller checks the status (a 400 is how Prometheus rejects bad PromQL)."""
        return httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10.0)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar) result of `expr`; raises with Prometheus' error on failure."""
        response = self.api("query", query=expr)
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(f"Prometheus rejected {expr!r}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]["result"]

    def alerts(self) -> list[dict[str, Any]]:
        response = self.api("alerts")
        response.raise_for_status()
        return response.json()["data"]["alerts"]

    def rule_groups(self) -> list[dict[str, Any]]:
        response = self.api("rules")
        response.raise_for_status()
        return response.json()["data"]["groups"]


class AlertmanagerServer(_ServerProcess):
    """Alertmanager loading `config_path` as written (no rewriting), clustering off."""

    @classmethod
    def start(cls, workdir: Path, config_path: Path) -> "AlertmanagerServer":
        binary = require_binary(ALERTMANAGER_BINARY, "apt-get install -y prometheus-alertmanager")
        home = workdir / "alertmanager"
        home.mkdir(parents=True, exist_ok=True)
        address = f"127.0.0.1:{free_port()}"
        log_path = workdir / "alertmanager.log"
        process = _launch(
            [
                str(binary),
                f"--config.file={config_path}",
                f"--storage.path={home / 'data'}",
                f"--web.listen-address={address}",
                "--cluster.listen-address=",
            ],
            log_path,
            home,
        )
        server = cls(process, address, log_path)
        wait_until_answering(f"{server.url}/-/ready", process, log_path, STARTUP_TIMEOUT_SECONDS)
        return server

    def status(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/v2/status", timeout=5.0)
        response.raise_for_status()
        return response.json()


class MotoServer(_ServerProcess):
    """moto's S3-compatible server; point boto3 at `url` (e.g. via `AWS_ENDPOINT_URL`) with `AWS_ENV`."""

    AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    @classmethod
    def start(cls, workdir: Path) -> "MotoServer":
        binary = require_binary(MOTO_SERVER_BINARY, f"{sys.executable} -m pip install 'moto[server]'")
        port = free_port()
        log_path = workdir / "moto.log"
        process = _launch([str(binary), "-H", "127.0.0.1", "-p", str(port)], log_path, workdir)
        server = cls(process, f"127.0.0.1:{port}", log_path)
        wait_until_answering(f"{server.url}/moto-api/", process, log_path, STARTUP_TIMEOUT_SECONDS)
        return server

    def s3_client(self) -> Any:
        import boto3  # runtime suite only; the IaC suite shares this module without boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=self.AWS_ENV["AWS_DEFAULT_REGION"],
        )


@contextlib.contextmanager
def exposition_target(render: Callable[[], str]) -> Iterator[str]:
    """A scrape target on loopback answering every GET with `render()` in the Prometheus text
    format; yields its host:port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def wait_for(condition_description: str, probe: Any, timeout: float, interval: float = 0.25) -> Any:
    """Call `probe()` until it returns something truthy; raise naming what was awaited on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"waited {timeout} s for {condition_description}; last result: {last!r}")
