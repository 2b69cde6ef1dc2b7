"""`mlops canary analyze|promote`: judge a running canary by its declared gates, then move it on.

Nothing else gates a KServe canary on metrics (Flagger and Argo Rollouts cannot target an
InferenceService), so the analysis is here: PromQL over the queue-proxy series of the model,
canary and stable told apart by the `model_version` label, over the gates' window.

Verdicts:
- rollback: the canary's 5xx ratio or p99 latency is above its gate, or it has already failed
  more requests than the gate tolerates over the minimum sample (enough evidence either way);
- hold: fewer requests than `minRequestCount` reached the canary, too few to decide;
- promote: enough traffic and every gate met.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from mlops.stackops.stack_models import ModelNotDeclared, StackModels
from mlops.stackfiles import ProjectFiles
from stacks.config import ModelDeployment, load_stack_config
from stacks.config.schema import CanaryGates

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
SERVING_NAMESPACE = "mlops-serving"
Verdict = Literal["promote", "hold", "rollback"]


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or rejected a query."""


@dataclass(frozen=True)
class SideMetrics:
    """Requests, 5xx ratio and p99 latency (ms) of one side of the split; None where there was no traffic."""

    requests: float
    errors: float
    error_rate: float | None
    p99_latency_ms: float | None


@dataclass(frozen=True)
class Analysis:
    model: str
    canary_version: str
    traffic_percent: int
    window: str
    verdict: Verdict
    reasons: list[str]
    canary: SideMetrics
    stable: SideMetrics
    gates: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        return {
            "model": self.model,
            "canaryVersion": self.canary_version,
            "trafficPercent": self.traffic_percent,
            "window": self.window,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "canary": _camel(document["canary"]),
            "stable": _camel(document["stable"]),
            "gates": self.gates,
        }


def _camel(values: dict[str, Any]) -> dict[str, Any]:
    return {k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]): v for k, v in values.items()}


class Prometheus:
    def __init__(self, url: str, at: float | None = None):
        self.url = url.rstrip("/")
        self.at = at

    def scalar(self, expr: str) -> float | None:
        """The single value of `expr` at the evaluation time, None when the vector is empty (or NaN)."""
        params = {"query": expr}
        if self.at is not None:
            params["time"] = f"{self.at:.3f}"
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
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


def side_metrics(prometheus: Prometheus, selector: str, window: str) -> SideMetrics:
    requests = prometheus.scalar(f"sum(increase(revision_request_count{{{selector}}}[{window}]))") or 0.0
    errors = prometheus.scalar(f'sum(increase(revision_request_count{{{selector}, response_code_class="5xx"}}[{window}]))') or 0.0
    p99 = prometheus.scalar(
        f"histogram_quantile(0.99, sum by (le) (rate(revision_request_latencies_bucket{{{selector}}}[{window}])))"
    )
    return SideMetrics(
        requests=round(requests, 3),
        errors=round(errors, 3),
        error_rate=round(errors / requests, 6) if requests > 0 else None,
        p99_latency_ms=round(p99, 3) if p99 is not None and requests > 0 else None,
    )


def verdict_of(canary: SideMetrics, gates: CanaryGates) -> tuple[Verdict, list[str]]:
    reasons: list[str] = []
    tolerated_errors = gates.max_error_rate * gates.min_request_count
    if canary.errors > tolerated_errors and canary.requests < gates.min_request_count:
        return "rollback", [
            f"{canary.errors:g} failed requests already exceed the {tolerated_errors:g} the gate tolerates over "
            f"{gates.min_request_count} requests"
        ]
    if canary.requests < gates.min_request_count:
        return "hold", [f"canary served {canary.requests:g} requests, fewer than minRequestCount {gates.min_request_count}"]
    if canary.error_rate is not None and canary.error_rate > gates.max_error_rate:
        reasons.append(f"5xx ratio {canary.error_rate:.4f} is above maxErrorRate {gates.max_error_rate:g}")
    if canary.p99_latency_ms is not None and canary.p99_latency_ms > gates.max_p99_latency_ms:
        reasons.append(f"p99 latency {canary.p99_latency_ms:g} ms is above maxP99LatencyMs {gates.max_p99_latency_ms:g}")
    if reasons:
        return "rollback", reasons
    return "promote", [
        f"{canary.requests:g} requests, 5xx ratio {canary.error_rate or 0:.4f} <= {gates.max_error_rate:g}, "
        f"p99 {canary.p99_latency_ms if canary.p99_latency_ms is not None else 0:g} ms <= {gates.max_p99_latency_ms:g} ms"
    ]


def analyze(model: ModelDeployment, prometheus: Prometheus, namespace: str = SERVING_NAMESPACE) -> Analysis:
    if model.canary is None:
        raise ValueError(f"model {model.name!r} declares no canary; nothing to analyze")
    if model.canary.traffic_percent == 100:
        raise ValueError(f"model {model.name!r} is promoted (canary at 100%); nothing to analyze until the next rollout")
    gates = model.canary.gates
    version = model.model.deployed_version
    base = f'namespace="{namespace}", model="{model.name}"'
    canary = side_metrics(prometheus, f'{base}, model_version="{version}"', gates.window)
    stable = side_metrics(prometheus, f'{base}, model_version!="{version}"', gates.window)
    verdict, reasons = verdict_of(canary, gates)
    return Analysis(
        model=model.name,
        canary_version=version,
        traffic_percent=model.canary.traffic_percent,
        window=gates.window,
        verdict=verdict,
        reasons=reasons,
        canary=canary,
        stable=stable,
        gates=gates.model_dump(by_alias=True, mode="json"),
    )


def _declared_model(project_dir: Path, stack: str, name: str) -> ModelDeployment:
    config = load_stack_config(ProjectFiles(project_dir).stack_config(stack, {}))
    model = next((m for m in config.models if m.name == name), None)
    if model is None:
        declared = ", ".join(m.name for m in config.models) or "none"
        raise ModelNotDeclared(f"stack {stack!r} declares no model {name!r}; declared: {declared}")
    return model


def _format_text(analysis: Analysis) -> str:
    def side(label: str, metrics: SideMetrics) -> str:
        rate = "n/a" if metrics.error_rate is None else f"{metrics.error_rate:.4f}"
        p99 = "n/a" if metrics.p99_latency_ms is None else f"{metrics.p99_latency_ms:g} ms"
        return f"  {label:<7} requests {metrics.requests:g}, 5xx {metrics.errors:g} (ratio {rate}), p99 {p99}"

    lines = [
        f"{analysis.verdict.upper()}: {analysis.model} canary version {analysis.canary_version} "
        f"({analysis.traffic_percent}% of traffic) over {analysis.window}",
        side("canary", analysis.canary),
        side("stable", analysis.stable),
        *[f"  - {reason}" for reason in analysis.reasons],
    ]
    return "\n".join(lines)


def command_analyze(args: argparse.Namespace) -> int:
    model = _declared_model(Path(args.project_dir), args.stack, args.model)
    try:
        analysis = analyze(model, Prometheus(args.prometheus, args.at), args.namespace)
    except ValueError as error:
        print(f"mlops canary analyze: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PrometheusError as error:
        print(f"mlops canary analyze: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(json.dumps(analysis.as_json(), indent=2, sort_keys=True) if args.format == "json" else _format_text(analysis))
    return EXIT_OK


def next_traffic(current: int, steps: list[int], requested: int | None) -> int:
    """The canary's next traffic percent: `requested`, else the first step above `current`, else 100."""
    if requested is not None:
        if not current < requested <= 100:
            raise ValueError(f"--step {requested} must be above the current {current}% and at most 100")
        return requested
    return next((step for step in steps if step > current), 100)


def promoted(declaration: dict[str, Any], steps: list[int], requested: int | None) -> tuple[dict[str, Any], int, int]:
    """The declaration one step further, and (old, new) percent. At 100 the new version is promoted:
    the stable side it replaced is dropped, the canary settings (gates, steps) stay for the next rollout."""
    canary = declaration.get("canary")
    if not canary:
        raise ValueError(f"model {declaration.get('name')!r} has no canary to promote")
    current = int(canary["trafficPercent"])
    if current == 100:
        raise ValueError(
            f"model {declaration.get('name')!r} is promoted already (canary at 100%); start the next rollout with "
            "`mlops models resolve --canary PERCENT`"
        )
    target = next_traffic(current, steps, requested)
    updated = json.loads(json.dumps(declaration))
    updated["canary"]["trafficPercent"] = target
    if target == 100:
        updated["canary"].pop("previousArtifactUri", None)
        updated["canary"].pop("previousVersion", None)
    return updated, current, target


def command_promote(args: argparse.Namespace) -> int:
    project_dir = Path(args.project_dir)
    model = _declared_model(project_dir, args.stack, args.model)
    stack_models = StackModels(project_dir, args.stack)
    models = stack_models.declarations()
    index = stack_models.index_of(args.model, models)
    try:
        models[index], current, target = promoted(models[index], model.canary.steps if model.canary else [], args.step)
    except ValueError as error:
        print(f"mlops canary promote: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stack_models.write(models)
    change = "promoted to 100% (stable side removed)" if target == 100 else f"canary {current}% -> {target}%"
    print(f"{args.model}: {change} in {stack_models.path.name}; apply with `pulumi up --stack {args.stack}`")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    canary = subparsers.add_parser("canary", help="analyze and promote model canaries")
    commands = canary.add_subparsers(dest="canary_command", required=True)

    analyze_parser = commands.add_parser(
        "analyze", help="evaluate the canary's declared gates with PromQL: promote, hold or rollback, with the numbers"
    )
    analyze_parser.add_argument("model", help="model deployment name (mlops:models[].name)")
    analyze_parser.add_argument("--stack", required=True, help="stack name: reads the gates from Pulumi.<stack>.yaml")
    analyze_parser.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://localhost:9090")
    analyze_parser.add_argument("--namespace", default=SERVING_NAMESPACE, help=f"namespace label of the series (default: {SERVING_NAMESPACE})")
    analyze_parser.add_argument("--at", type=float, help="evaluation time as a Unix timestamp (default: now)")
    analyze_parser.add_argument("--format", choices=("text", "json"), default="text")
    analyze_parser.add_argument("--project-dir", default=".", help="project directory holding Pulumi.yaml (default: .)")
    analyze_parser.set_defaults(func=command_analyze)

    promote_parser = commands.add_parser(
        "promote", help="move the canary to its next traffic step, or to 100% (promoted: the stable side is dropped), in Pulumi.<stack>.yaml"
    )
    promote_parser.add_argument("model", help="model deployment name (mlops:models[].name)")
    promote_parser.add_argument("--stack", required=True, help="stack name: edits Pulumi.<stack>.yaml")
    promote_parser.add_argument("--step", type=int, metavar="PERCENT", help="traffic percent to move to (default: the next declared step)")
    promote_parser.add_argument("--project-dir", default=".", help="project directory holding Pulumi.yaml (default: .)")
    promote_parser.set_defaults(func=command_promote)
