"""`mlops canary analyze` and `promote` against a real Prometheus holding known queue-proxy series.

Thirty minutes of series for four models (stable version 6 at 18 req/s next to canary version 7)
are written as OpenMetrics, turned into TSDB blocks with `promtool tsdb create-blocks-from
openmetrics` and loaded by a real Prometheus; the analysis runs at the end of that data. The series
are the Knative 1.21 queue-proxy's request histogram as its exporter writes it: names, buckets
(seconds) and labels from monitoring/catalog.py, which cites knative/serving
pkg/queue/request_metric.go @ knative-v1.21.3; a status code gets a series once it has been answered.
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
from monitoring import catalog
from tests.conftest import PROJECT_DIR
from tests.runtime.servers import PrometheusServer, promtool

pytestmark = pytest.mark.server

STEP_SECONDS = 15
DURATION_SECONDS = 30 * 60
BUCKETS = (*catalog.QUEUE_PROXY_LATENCY_BOUNDS, math.inf)
FAST = {0.05: 0.6, 0.1: 0.995, 0.25: 1.0}  # share of requests at or below each bucket (seconds)
SLOW = {0.1: 0.5, 0.5: 0.95, 1: 1.0}
FAMILY = catalog.QUEUE_PROXY_REQUEST_DURATION.name
SCOPE = f'otel_scope_name="{catalog.QUEUE_PROXY_SCOPE}",otel_scope_schema_url="",otel_scope_version=""'
GATES = {"maxErrorRate": 0.01, "maxP99LatencyMs": 250, "minRequestCount": 500, "window": "10m"}


@dataclass(frozen=True)
class Side:
    version: str
    requests_per_second: float
    error_ratio: float
    latency: dict[float, float]


# model -> (stable, canary)
SCENARIOS = {
    "healthy": (Side("6", 18, 0.001, FAST), Side("7", 2, 0.002, FAST)),
    "error-spike": (Side("6", 18, 0.001, FAST), Side("7", 2, 0.10, FAST)),
    "latency-regression": (Side("6", 18, 0.001, FAST), Side("7", 2, 0.001, SLOW)),
    "low-traffic": (Side("6", 18, 0.001, FAST), Side("7", 0.1, 0.0, FAST)),
}


def share_at_or_below(latency: dict[float, float], bucket: float) -> float:
    return max([share for le, share in latency.items() if le <= bucket], default=0.0) if bucket != math.inf else 1.0


def openmetrics(end: int) -> str:
    counts, buckets = [], []
    for model, sides in SCENARIOS.items():
        for side in sides:
            base = f'namespace="mlops-serving",model="{model}",model_version="{side.version}",revision="{model}-predictor-v{side.version}",{SCOPE}'
            for status in (200, 500) if side.error_ratio else (200,):
                labels = f'{base},http_response_status_code="{status}"'
                for step in range(DURATION_SECONDS // STEP_SECONDS + 1):
                    at = end - DURATION_SECONDS + step * STEP_SECONDS
                    total = math.floor(side.requests_per_second * step * STEP_SECONDS)
                    errors = math.floor(total * side.error_ratio)
                    answered = errors if status == 500 else total - errors
                    counts.append(f"{FAMILY}_count{{{labels}}} {answered} {at}")
                    for le in BUCKETS:
                        bound = "+Inf" if le == math.inf else f"{le:g}"
                        buckets.append(f'{FAMILY}_bucket{{{labels},le="{bound}"}} {math.floor(answered * share_at_or_below(side.latency, le))} {at}')
    # promtool wants samples of a series in time order, series grouped by metric family.
    return "\n".join([f"# TYPE {FAMILY}_count gauge", *counts, f"# TYPE {FAMILY}_bucket gauge", *buckets, "# EOF"]) + "\n"


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
        model["canary"] = {"trafficPercent": 10, "previousArtifactUri": f"s3://artifacts/{name}/6", "previousVersion": "6", "gates": dict(GATES)}
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
    assert result["canary"]["errorRate"] < 0.01 and result["canary"]["p99LatencySeconds"] < 0.25
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
    assert result["canary"]["p99LatencySeconds"] > 0.5 and result["stable"]["p99LatencySeconds"] < 0.25
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
    assert "  maxErrorRate     FAIL       value 0.1" in out and "threshold 0.01 ratio" in out
    assert "  maxP99LatencyMs  pass" in out and "threshold 0.25 seconds" in out
    assert out.count("    query: ") == 3


def test_each_gate_lists_value_threshold_and_the_query_that_measured_it(project, loaded, capsys):
    """The JSON lists every declared gate; each query, run again on the same Prometheus, returns the
    value the gate reports."""
    result = analyze(project, loaded, "latency-regression", capsys)
    gates = {gate["gate"]: gate for gate in result["gates"]}
    assert set(gates) == {"minRequestCount", "maxErrorRate", "maxP99LatencyMs"}
    assert (gates["minRequestCount"]["threshold"], gates["maxErrorRate"]["threshold"], gates["maxP99LatencyMs"]["threshold"]) == (500, 0.01, 0.25)
    assert [gates[name]["passed"] for name in ("minRequestCount", "maxErrorRate", "maxP99LatencyMs")] == [True, True, False]
    for gate in gates.values():
        answer = loaded.prometheus.api("query", query=gate["query"], time=str(loaded.at)).json()["data"]["result"]
        assert float(answer[0]["value"][1]) == pytest.approx(gate["value"], rel=1e-3), gate


def promote(project: Path, loaded: Loaded, model: str) -> int:
    parser = argparse.ArgumentParser()
    canary.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["canary", "promote", model, "--stack", "canary", "--prometheus", loaded.prometheus.url, "--at", str(loaded.at), "--project-dir", str(project)]
    )
    return args.func(args)


def declared_traffic(project: Path, model: str) -> int:
    models = yaml.safe_load((project / "Pulumi.canary.yaml").read_text())["config"]["mlops:models"]
    return next(m for m in models if m["name"] == model)["canary"]["trafficPercent"]


@pytest.mark.parametrize("model", ["error-spike", "latency-regression", "low-traffic"])
def test_promote_is_refused_unless_the_analysis_says_promote(project, loaded, capsys, model):
    """rollback or hold: exit 4 with the analysis, the stack file untouched."""
    before = (project / "Pulumi.canary.yaml").read_bytes()
    assert promote(project, loaded, model) == canary.EXIT_REFUSED
    err = capsys.readouterr().err
    assert "refused, the analysis says" in err and "  gates:" in err
    assert (project / "Pulumi.canary.yaml").read_bytes() == before


def test_promote_moves_a_healthy_canary_to_its_next_step(project, loaded, capsys, tmp_path):
    """promote: the analysis is printed and the canary goes from 10 % to the next step, 25 %."""
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    assert promote(copy, loaded, "healthy") == 0
    out = capsys.readouterr().out
    assert out.startswith("PROMOTE: healthy") and "healthy: canary 10% -> 25%" in out
    assert declared_traffic(copy, "healthy") == 25 and declared_traffic(copy, "error-spike") == 10


def test_unreachable_prometheus_exits_3(project, capsys):
    """Nothing listening: exit 3 naming the URL."""
    parser = argparse.ArgumentParser()
    canary.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["canary", "analyze", "healthy", "--stack", "canary", "--prometheus", "http://127.0.0.1:9", "--project-dir", str(project)])
    assert args.func(args) == 3 and "cannot reach Prometheus" in capsys.readouterr().err
