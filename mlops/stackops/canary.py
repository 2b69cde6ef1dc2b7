"""`mlops canary analyze|promote`: judge a running canary by its declared gates, then move it on.

Nothing else gates a KServe canary on metrics (Flagger and Argo Rollouts cannot target an
InferenceService), so the analysis is here: the gate queries of `monitoring.canary.gates` (the same
the in-cluster canary guard runs) over the queue-proxy's request histogram of the model, canary and
stable told apart by the `model_version` label, over the gates' window. The analysis lists each gate
with the canary's value, the threshold and the query that measured it.

Verdicts:
- rollback: the canary's 5xx ratio or p99 latency is above its gate, or it has already failed
  more requests than the gate tolerates over the minimum sample (enough evidence either way);
- hold: fewer requests than `minRequestCount` reached the canary, too few to decide;
- promote: enough traffic and every gate met.

`promote` moves the canary on only when the analysis says promote; `--force --reason` overrides it,
and the reason is printed with the change for the commit that carries it. `--apply` then runs
`pulumi up` on the model's resources only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.stackfiles import ProjectFiles
from mlops.stackops import pulumi_cli
from mlops.stackops.apply import apply_model_change
from mlops.stackops.stack_models import ModelNotDeclared, StackModels
from monitoring.canary.gates import Evaluation, GateResult, Gates, Prometheus, PrometheusError, SideMetrics, evaluate
from components.declarations import model_namespace
from stacks.config import ModelDeployment, load_stack_config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_REFUSED = 4  # promote: the analysis does not say promote


@dataclass(frozen=True)
class Analysis:
    model: str
    canary_version: str
    traffic_percent: int
    window: str
    evaluation: Evaluation

    @property
    def verdict(self) -> str:
        return self.evaluation.verdict

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "canaryVersion": self.canary_version,
            "trafficPercent": self.traffic_percent,
            "window": self.window,
            "verdict": self.evaluation.verdict,
            "reasons": self.evaluation.reasons,
            "canary": _side_json(self.evaluation.canary),
            "stable": _side_json(self.evaluation.stable),
            "gates": [_gate_json(gate) for gate in self.evaluation.gates],
        }


def _side_json(side: SideMetrics) -> dict[str, Any]:
    return {"requests": side.requests, "errors": side.errors, "errorRate": side.error_rate, "p99LatencySeconds": side.p99_latency_seconds}


def _gate_json(gate: GateResult) -> dict[str, Any]:
    return {"gate": gate.name, "value": gate.value, "threshold": gate.threshold, "unit": gate.unit, "passed": gate.passed, "query": gate.query}


def analyze(model: ModelDeployment, prometheus: Prometheus, namespace: str | None = None) -> Analysis:
    if model.canary is None:
        raise ValueError(f"model {model.name!r} declares no canary; nothing to analyze")
    if model.canary.traffic_percent == 100:
        raise ValueError(f"model {model.name!r} is promoted (canary at 100%); nothing to analyze until the next rollout")
    declared = model.canary.gates
    gates = Gates(declared.max_error_rate, declared.max_p99_latency_ms, declared.min_request_count, declared.window)
    version = model.model.deployed_version
    return Analysis(
        model=model.name,
        canary_version=version,
        traffic_percent=model.canary.traffic_percent,
        window=gates.window,
        evaluation=evaluate(prometheus, namespace or model_namespace(model), model.name, version, gates),
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
        p99 = "n/a" if metrics.p99_latency_seconds is None else f"{metrics.p99_latency_seconds:g} s"
        return f"  {label:<7} requests {metrics.requests:g}, 5xx {metrics.errors:g} (ratio {rate}), p99 {p99}"

    def gate(result: GateResult) -> list[str]:
        outcome = {True: "pass", False: "FAIL", None: "not judged"}[result.passed]
        value = "n/a" if result.value is None else f"{result.value:g}"
        return [
            f"  {result.name:<16} {outcome:<10} value {value} {result.unit}, threshold {result.threshold:g} {result.unit}",
            f"    query: {result.query}",
        ]

    evaluation = analysis.evaluation
    lines = [
        f"{evaluation.verdict.upper()}: {analysis.model} canary version {analysis.canary_version} "
        f"({analysis.traffic_percent}% of traffic) over {analysis.window}",
        side("canary", evaluation.canary),
        side("stable", evaluation.stable),
        "  gates:",
        *[line for result in evaluation.gates for line in gate(result)],
        *[f"  - {reason}" for reason in evaluation.reasons],
    ]
    return "\n".join(lines)


def _analysis_or_exit(args: argparse.Namespace, model: ModelDeployment, command: str) -> Analysis | int:
    """The analysis, or the exit code after saying why there is none (2: nothing to analyze, 3: no Prometheus)."""
    try:
        return analyze(model, Prometheus(args.prometheus, args.at), args.namespace)
    except ValueError as error:
        print(f"mlops canary {command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PrometheusError as error:
        print(f"mlops canary {command}: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE


def command_analyze(args: argparse.Namespace) -> int:
    analysis = _analysis_or_exit(args, _declared_model(Path(args.project_dir), args.stack, args.model), "analyze")
    if isinstance(analysis, int):
        return analysis
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


def _promotion_allowed(args: argparse.Namespace, model: ModelDeployment) -> int:
    """EXIT_OK when the canary may move on: the analysis says promote, or --force with a reason."""
    if args.force:
        if not (args.reason or "").strip():
            print("mlops canary promote: --force needs --reason TEXT saying why the gates are overridden", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"{args.model}: promoting without the gates' verdict (--force): {args.reason.strip()}")
        return EXIT_OK
    if not args.prometheus:
        print(
            "mlops canary promote: --prometheus URL is required to evaluate the canary's gates before promoting "
            "(or --force --reason TEXT to override them)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    analysis = _analysis_or_exit(args, model, "promote")
    if isinstance(analysis, int):
        return analysis
    if analysis.verdict != "promote":
        print(_format_text(analysis), file=sys.stderr)
        print(f"mlops canary promote: refused, the analysis says {analysis.verdict}, not promote (override: --force --reason TEXT)", file=sys.stderr)
        return EXIT_REFUSED
    print(_format_text(analysis))
    return EXIT_OK


def command_promote(args: argparse.Namespace) -> int:
    project_dir = Path(args.project_dir)
    model = _declared_model(project_dir, args.stack, args.model)
    stack_models = StackModels(project_dir, args.stack)
    declared = stack_models.declarations()
    models = stack_models.declarations()
    index = stack_models.index_of(args.model, models)
    try:
        models[index], current, target = promoted(models[index], model.canary.steps if model.canary else [], args.step)
    except ValueError as error:
        print(f"mlops canary promote: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    allowed = _promotion_allowed(args, model)
    if allowed != EXIT_OK:
        return allowed
    change = "promoted to 100% (stable side removed)" if target == 100 else f"canary {current}% -> {target}%"
    if args.apply:
        return _apply_promotion(args, stack_models, declared, models, change)
    stack_models.write(models)
    print(f"{args.model}: {change} in {stack_models.path.name}; apply with --apply or `pulumi up --stack {args.stack}`")
    return EXIT_OK


def _apply_promotion(
    args: argparse.Namespace, stack_models: StackModels, declared: list[dict[str, Any]], models: list[dict[str, Any]], change: str
) -> int:
    """Write the step and apply it to the model's resources only; a failed update puts the file back."""
    # The targets come from a render, which needs pulumi; `canary analyze` also runs where it is not installed.
    from mlops.stackops.targets import model_targets

    project_dir = Path(args.project_dir)
    edited = stack_models.edited_text(models)
    try:
        pulumi_cli.executable()
    except pulumi_cli.PulumiError as error:
        print(f"mlops canary promote: {error}; nothing written", file=sys.stderr)
        return EXIT_BAD_INPUT
    targets = model_targets(project_dir, args.stack, args.model, [declared, models])
    applied = apply_model_change(project_dir, stack_models, edited, targets, f"mlops canary promote {args.model}: {change}")
    update = f"update {applied.update}" if applied.update is not None else "the update"
    if not applied.succeeded:
        print(f"mlops canary promote: {update} failed; {stack_models.path.name} is restored", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.model}: {change}; {update} succeeded on its {len(targets)} resources; commit {stack_models.path.name}")
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
    analyze_parser.add_argument("--namespace", help="namespace label of the series (default: the model's, team-<team> or mlops-serving)")
    analyze_parser.add_argument("--at", type=float, help="evaluation time as a Unix timestamp (default: now)")
    analyze_parser.add_argument("--format", choices=("text", "json"), default="text")
    analyze_parser.add_argument("--project-dir", default=".", help="project directory holding Pulumi.yaml (default: .)")
    analyze_parser.set_defaults(func=command_analyze)

    promote_parser = commands.add_parser(
        "promote",
        help="if the canary's gates say promote, move it to its next traffic step, or to 100%% (promoted: the stable side is dropped), in Pulumi.<stack>.yaml",
    )
    promote_parser.add_argument("model", help="model deployment name (mlops:models[].name)")
    promote_parser.add_argument("--stack", required=True, help="stack name: edits Pulumi.<stack>.yaml")
    promote_parser.add_argument("--step", type=int, metavar="PERCENT", help="traffic percent to move to (default: the next declared step)")
    promote_parser.add_argument("--prometheus", help="Prometheus base URL: the canary's gates are evaluated there first, and must say promote")
    promote_parser.add_argument("--namespace", help="namespace label of the series (default: the model's, team-<team> or mlops-serving)")
    promote_parser.add_argument("--at", type=float, help="evaluation time as a Unix timestamp (default: now)")
    promote_parser.add_argument("--force", action="store_true", help="promote whatever the gates say (needs --reason)")
    promote_parser.add_argument("--reason", help="why --force overrides the gates; printed with the change")
    promote_parser.add_argument(
        "--apply", action="store_true", help="also run `pulumi up` targeted at the model's resources (file restored if it fails)"
    )
    promote_parser.add_argument("--project-dir", default=".", help="project directory holding Pulumi.yaml (default: .)")
    promote_parser.set_defaults(func=command_promote)
