"""A canary's gates as PromQL over the queue-proxy's request histogram, and their verdict.

`mlops canary analyze` and the in-cluster canary guard evaluate the same queries, built here, against
a Prometheus HTTP API. The series are the Knative queue-proxy's `kn_serving_invocation_duration_seconds`
histogram (one observation per request, labelled with its HTTP status code; values in seconds),
relabelled by the model's PodMonitor with namespace, model and model_version: the canary and the
stable side are told apart by model_version. Pure stdlib: this runs in the runtime image.

Verdicts:
- rollback: the canary's 5xx ratio or p99 latency is above its gate, or it has already failed more
  requests than the gate tolerates over the minimum sample (enough evidence either way);
- hold: fewer requests than the minimum reached the canary, too few to decide;
- promote: enough traffic and every gate met.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Literal

from monitoring import catalog

Verdict = Literal["promote", "hold", "rollback"]
REQUESTS = catalog.QUEUE_PROXY_REQUEST_DURATION.name + "_count"
LATENCY_BUCKETS = catalog.QUEUE_PROXY_REQUEST_DURATION.name + "_bucket"
SERVER_ERRORS = f'http_response_status_code=~"{catalog.SERVER_ERROR_STATUS}"'


class PrometheusError(RuntimeError):
    """Prometheus could not be reached, rejected a query, or answered with more than one series."""


@dataclass(frozen=True)
class Gates:
    """The gates a canary declares (stack config `canary.gates`); latency in milliseconds as declared."""

    max_error_rate: float
    max_p99_latency_ms: float
    min_request_count: int
    window: str


def selector(namespace: str, model: str, version: str | None = None, *, exclude_version: bool = False) -> str:
    """Label matchers for one model, or one version of it (or every version but one)."""
    labels = f'namespace="{namespace}", model="{model}"'
    if version is None:
        return labels
    return labels + f', model_version{"!=" if exclude_version else "="}"{version}"'


def requests_query(matchers: str, window: str) -> str:
    return f"sum(increase({REQUESTS}{{{matchers}}}[{window}]))"


def errors_query(matchers: str, window: str) -> str:
    return f"sum(increase({REQUESTS}{{{matchers}, {SERVER_ERRORS}}}[{window}]))"


def error_ratio_query(matchers: str, window: str) -> str:
    """5xx answers over all answers; 0 (not empty) when requests came and none failed, since a status
    code the server never answered has no series; empty when no request came."""
    errors = f"sum(rate({REQUESTS}{{{matchers}, {SERVER_ERRORS}}}[{window}]))"
    return f"({errors} or vector(0)) / sum(rate({REQUESTS}{{{matchers}}}[{window}]))"


def latency_quantile_query(quantile: float, matchers: str, window: str, by: str = "le") -> str:
    """A latency quantile in seconds from the histogram's buckets."""
    return f"histogram_quantile({quantile:g}, sum by ({by}) (rate({LATENCY_BUCKETS}{{{matchers}}}[{window}])))"


@dataclass(frozen=True)
class GateResult:
    """One gate: what was measured, against what limit, with which query, and whether it passed
    (None while too few requests came to judge)."""

    name: str
    value: float | None
    threshold: float
    unit: str
    query: str
    passed: bool | None


@dataclass(frozen=True)
class SideMetrics:
    """Requests, 5xx answers, 5xx ratio and p99 latency (seconds) of one side of the split; the ratio
    and latency are None where no request came."""

    requests: float
    errors: float
    error_rate: float | None
    p99_latency_seconds: float | None


@dataclass(frozen=True)
class Evaluation:
    verdict: Verdict
    reasons: list[str]
    gates: list[GateResult]
    canary: SideMetrics
    stable: SideMetrics


class Prometheus:
    """Instant queries against a Prometheus HTTP API (`/api/v1/query`), optionally at a fixed time."""

    def __init__(self, url: str, at: float | None = None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.at = at
        self.timeout = timeout

    def scalar(self, expr: str) -> float | None:
        """The single value of `expr`, None when the result is empty or NaN."""
        params = {"query": expr}
        if self.at is not None:
            params["time"] = f"{self.at:.3f}"
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise PrometheusError(f"Prometheus rejected {expr!r}: {error.read().decode(errors='replace')[:300]}") from error
        except (urllib.error.URLError, OSError) as error:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {getattr(error, 'reason', error)}") from error
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            value = float(result[1])
        elif not result:
            return None
        elif len(result) > 1:
            raise PrometheusError(f"{expr!r} returned {len(result)} series; expected one")
        else:
            value = float(result[0]["value"][1])
        return None if math.isnan(value) else value


def side_metrics(prometheus: Prometheus, matchers: str, window: str) -> SideMetrics:
    requests = prometheus.scalar(requests_query(matchers, window)) or 0.0
    errors = prometheus.scalar(errors_query(matchers, window)) or 0.0
    p99 = prometheus.scalar(latency_quantile_query(0.99, matchers, window))
    return SideMetrics(
        requests=round(requests, 3),
        errors=round(errors, 3),
        error_rate=round(errors / requests, 6) if requests > 0 else None,
        p99_latency_seconds=round(p99, 6) if p99 is not None and requests > 0 else None,
    )


def gate_results(canary: SideMetrics, gates: Gates, matchers: str) -> list[GateResult]:
    """Each declared gate with the canary's value, the threshold and the query that measured it."""
    enough = canary.requests >= gates.min_request_count
    latency_limit = gates.max_p99_latency_ms / 1000
    return [
        GateResult(
            "minRequestCount", canary.requests, gates.min_request_count, "requests",
            requests_query(matchers, gates.window), enough,
        ),
        GateResult(
            "maxErrorRate", canary.error_rate, gates.max_error_rate, "ratio",
            error_ratio_query(matchers, gates.window),
            None if not enough or canary.error_rate is None else canary.error_rate <= gates.max_error_rate,
        ),
        GateResult(
            "maxP99LatencyMs", canary.p99_latency_seconds, latency_limit, "seconds",
            latency_quantile_query(0.99, matchers, gates.window),
            None if not enough or canary.p99_latency_seconds is None else canary.p99_latency_seconds <= latency_limit,
        ),
    ]


def verdict_of(canary: SideMetrics, gates: Gates) -> tuple[Verdict, list[str]]:
    tolerated_errors = gates.max_error_rate * gates.min_request_count
    if canary.errors > tolerated_errors and canary.requests < gates.min_request_count:
        return "rollback", [
            f"{canary.errors:g} failed requests already exceed the {tolerated_errors:g} the gate tolerates over "
            f"{gates.min_request_count} requests"
        ]
    if canary.requests < gates.min_request_count:
        return "hold", [f"canary served {canary.requests:g} requests, fewer than minRequestCount {gates.min_request_count}"]
    reasons: list[str] = []
    if canary.error_rate is not None and canary.error_rate > gates.max_error_rate:
        reasons.append(f"5xx ratio {canary.error_rate:.4f} is above maxErrorRate {gates.max_error_rate:g}")
    latency_limit = gates.max_p99_latency_ms / 1000
    if canary.p99_latency_seconds is not None and canary.p99_latency_seconds > latency_limit:
        reasons.append(f"p99 latency {canary.p99_latency_seconds:g} s is above maxP99LatencyMs {gates.max_p99_latency_ms:g} ms")
    if reasons:
        return "rollback", reasons
    p99 = canary.p99_latency_seconds if canary.p99_latency_seconds is not None else 0.0
    return "promote", [
        f"{canary.requests:g} requests, 5xx ratio {canary.error_rate or 0:.4f} <= {gates.max_error_rate:g}, "
        f"p99 {p99:g} s <= {latency_limit:g} s"
    ]


def evaluate(prometheus: Prometheus, namespace: str, model: str, canary_version: str, gates: Gates) -> Evaluation:
    """Judge the canary version of `model` against its gates over the gates' window."""
    canary_matchers = selector(namespace, model, canary_version)
    canary = side_metrics(prometheus, canary_matchers, gates.window)
    stable = side_metrics(prometheus, selector(namespace, model, canary_version, exclude_version=True), gates.window)
    verdict, reasons = verdict_of(canary, gates)
    return Evaluation(verdict, reasons, gate_results(canary, gates, canary_matchers), canary, stable)
