"""`mlops canary analyze` against a real Prometheus holding known queue-proxy series.

Thirty minutes of series for four models (stable version 6 at 18 req/s next to canary version 7)
are written as OpenMetrics, turned into TSDB blocks with `promtool tsdb create-blocks-from
openmetrics` and loaded by a real Prometheus; the analysis runs at the end of that data.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlops.stackops import canary
from tests.conftest import PROJECT_DIR
from tests.runtime.servers import PrometheusServer, promtool

pytestmark = pytest.mark.server

STEP_SECONDS = 15
DURATION_SECONDS = 30 * 60
BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, math.inf)
FAST = {50: 0.6, 100: 0.995, 250: 1.0}  # share of requests at or below each bucket (ms)
SLOW = {100: 0.5, 500: 0.95, 1000: 1.0}
GATES = {"maxErrorRate": 0.01, "maxP99LatencyMs": 250, "minRequestCount": 500, "window": "10m"}


@dataclass(frozen=True)
class Side:
    version: str
    requests_per_second: float
    error_ratio: float
    latency: dict[int, float]


# model -> (stable, canary)
SCENARIOS = {
    "healthy": (Side("6", 18, 0.001, FAST), Side("7", 2, 0.002, FAST)),
    "error-spike": (Side("6", 18, 0.001, FAST), Side("7", 2, 0.10, FAST)),
    "latency-regression": (Side("6", 18, 0.001, FAST), Side("7", 2, 0.001, SLOW)),
    "low-traffic": (Side("6", 18, 0.001, FAST), Side("7", 0.1, 0.0, FAST)),
}


def share_at_or_below(latency: dict[int, float], bucket: float) -> float:
    return max([share for le, share in latency.items() if le <= bucket], default=0.0) if bucket != math.inf else 1.0


def openmetrics(end: int) -> str:
    lines = ["# TYPE revision_request_count gauge", "# TYPE revision_request_latencies_bucket gauge"]
    for model, sides in SCENARIOS.items():
        for side in sides:
            base = f'namespace="mlops-serving",model="{model}",model_version="{side.version}",revision="{model}-predictor-v{side.version}"'
            for step in range(DURATION_SECONDS // STEP_SECONDS + 1):
                at = end - DURATION_SECONDS + step * STEP_SECONDS
                total = math.floor(side.requests_per_second * step * STEP_SECONDS)
                errors = math.floor(total * side.error_ratio)
                lines.append(f'revision_request_count{{{base},response_code_class="2xx"}} {total - errors} {at}')
                lines.append(f'revision_request_count{{{base},response_code_class="5xx"}} {errors} {at}')
                for le in BUCKETS:
                    label = "+Inf" if le == math.inf else str(le)
                    count = math.floor(total * share_at_or_below(side.latency, le))
                    lines.append(f'revision_request_latencies_bucket{{{base},le="{label}"}} {count} {at}')
    # promtool wants samples of a series in time order, series grouped by metric family.
    counts = [line for line in lines[2:] if line.startswith("revision_request_count")]
    buckets = [line for line in lines[2:] if line.startswith("revision_request_latencies_bucket")]
    return "\n".join([lines[0], *counts, lines[1], *buckets, "# EOF"]) + "\n"


@dataclass(frozen=True)
class Loaded:
    prometheus: PrometheusServer
    at: int


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    workdir = tmp_path_factory.mktemp("canary")
    end = int(time.time()) - 300
    source = workdir / "series.om"
    source.write_text(openmetrics(end))
    data = workdir / "prometheus" / "data"
    data.mkdir(parents=True)
    completed = subprocess.run(
        [str(promtool()), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    with PrometheusServer.start(workdir) as prometheus:
        yield Loaded(prometheus, end)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("project")
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", directory / "Pulumi.yaml")
    dev = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    template = dev["config"]["mlops:models"][0]
    models = []
    for name in SCENARIOS:
        model = json.loads(json.dumps(template))
        model["name"] = name
        model["model"].update({"registeredModel": name, "version": "7", "artifactUri": f"s3://artifacts/{name}/7"})
        model["canary"] = {"trafficPercent": 10, "previousArtifactUri": f"s3://artifacts/{name}/6", "previousVersion": "6", "gates": GATES}
        models.append(model)
    dev["config"]["mlops:models"] = models
    (directory / "Pulumi.canary.yaml").write_text(yaml.safe_dump(dev, sort_keys=False))
    return directory


def analyze(project: Path, loaded: Loaded, model: str, capsys) -> dict:
    parser = argparse.ArgumentParser()
    canary.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["canary", "analyze", model, "--stack", "canary", "--prometheus", loaded.prometheus.url,
         "--at", str(loaded.at), "--format", "json", "--project-dir", str(project)]
    )
    assert args.func(args) == 0
    return json.loads(capsys.readouterr().out)


def test_healthy_canary_is_promoted(project, loaded, capsys):
    """~1200 canary requests, 0.2 % errors, p99 ~100 ms: every gate met."""
    result = analyze(project, loaded, "healthy", capsys)
    assert result["verdict"] == "promote", result
    assert 1100 < result["canary"]["requests"] < 1300
    assert result["canary"]["errorRate"] < 0.01 and result["canary"]["p99LatencyMs"] < 250
    assert result["stable"]["requests"] == pytest.approx(9 * result["canary"]["requests"], rel=0.02)  # 18 vs 2 req/s


def test_error_spike_is_rolled_back(project, loaded, capsys):
    """10 % 5xx on the canary against a 1 % gate; stable stays clean."""
    result = analyze(project, loaded, "error-spike", capsys)
    assert result["verdict"] == "rollback", result
    assert result["canary"]["errorRate"] == pytest.approx(0.10, abs=0.01)
    assert result["stable"]["errorRate"] < 0.01
    assert any("maxErrorRate" in reason for reason in result["reasons"])


def test_latency_regression_is_rolled_back(project, loaded, capsys):
    """Canary p99 near 1 s against a 250 ms gate, errors fine."""
    result = analyze(project, loaded, "latency-regression", capsys)
    assert result["verdict"] == "rollback", result
    assert result["canary"]["p99LatencyMs"] > 500 and result["stable"]["p99LatencyMs"] < 250
    assert [reason for reason in result["reasons"] if "maxP99LatencyMs" in reason] and not [r for r in result["reasons"] if "maxErrorRate" in r]


def test_too_little_traffic_holds(project, loaded, capsys):
    """60 canary requests in the window, fewer than minRequestCount 500: no verdict yet."""
    result = analyze(project, loaded, "low-traffic", capsys)
    assert result["verdict"] == "hold", result
    assert result["canary"]["requests"] < 500
    assert "minRequestCount 500" in result["reasons"][0]


def test_text_report_shows_the_numbers(project, loaded, capsys):
    """The default text output names the verdict, both sides and the reason."""
    parser = argparse.ArgumentParser()
    canary.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["canary", "analyze", "error-spike", "--stack", "canary", "--prometheus", loaded.prometheus.url,
         "--at", str(loaded.at), "--project-dir", str(project)]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("ROLLBACK: error-spike canary version 7 (10% of traffic) over 10m")
    assert "  canary  requests" in out and "  stable  requests" in out


def test_unreachable_prometheus_exits_3(project, capsys):
    """Nothing listening: exit 3 naming the URL."""
    parser = argparse.ArgumentParser()
    canary.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["canary", "analyze", "healthy", "--stack", "canary", "--prometheus", "http://127.0.0.1:9", "--project-dir", str(project)])
    assert args.func(args) == 3 and "cannot reach Prometheus" in capsys.readouterr().err
