"""`mlops render`, `mlops validate` and `mlops diff`: the offline engine's commands."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from mlops.project import EPILOG, EXIT_FAILED, EXIT_OK, default_reference_dir, find_project_dir, progress
from mlops.stackfiles import parse_overrides


def _render(args: argparse.Namespace):
    from mlops.offline.render import render

    project_dir = find_project_dir(Path(args.project_dir).resolve())
    started = time.perf_counter()
    rendering = render(project_dir, args.stack, parse_overrides(args.config or []), processes=args.processes)
    progress(f"rendered stack {args.stack} in {time.perf_counter() - started:.2f}s")
    return project_dir, rendering


def _summary(rendering) -> str:
    types = Counter(r.type for r in rendering.resources if r.custom)
    manifests = sum(1 for r in rendering.resources if r.is_manifest)
    lines = [
        f"stack {rendering.stack} (cloud {rendering.outputs.get('cloud', '?')}, "
        f"environment {rendering.outputs.get('environment', '?')}): {len(rendering.resources)} resources, "
        f"{manifests} Kubernetes objects"
    ]
    lines += [f"  {count:4d}  {token}" for token, count in sorted(types.items())]
    lines += _canary_gates(rendering)
    return "\n".join(lines)


def _canary_gates(rendering) -> list[str]:
    """The gates `mlops canary analyze` will apply to each canary, saying which are defaults, so a
    gate nobody declared is seen before it decides a promotion."""
    from stacks.config import load_stack_config

    lines = []
    for model in load_stack_config(rendering.config).models:
        if model.canary is None:
            continue
        gates = model.canary.gates
        declared = gates.model_fields_set if "gates" in model.canary.model_fields_set else set()
        values = ", ".join(
            f"{field.alias} {getattr(gates, name)}{'' if name in declared else ' (default)'}"
            for name, field in type(gates).model_fields.items()
        )
        lines.append(f"canary gates of {model.name}: {values}")
    return lines


def command_render(args: argparse.Namespace) -> int:
    from mlops.offline.render import write_rendering

    project_dir, rendering = _render(args)
    out_dir = Path(args.out) if args.out else project_dir / "build" / "render" / args.stack
    written = write_rendering(rendering, out_dir)
    print(_summary(rendering))
    print(f"wrote {out_dir / 'state.json'} and {len(written) - 1} manifests under {out_dir / 'manifests'}")
    return EXIT_OK


def command_validate(args: argparse.Namespace) -> int:
    from mlops.offline.policy_runner import blocking, run_policies
    from mlops.offline.validate import ReferenceData, kubernetes_version, validate_rendering

    project_dir, rendering = _render(args)
    reference = ReferenceData(
        Path(args.reference) if args.reference else default_reference_dir(project_dir),
        cache_dir=project_dir / "build" / "cache",
    )
    version = kubernetes_version(rendering)
    started = time.perf_counter()
    findings = validate_rendering(rendering, reference, version)
    progress(f"validated schemas in {time.perf_counter() - started:.2f}s")
    print(_summary(rendering))
    manifests = sum(1 for r in rendering.resources if r.is_manifest)
    print(f"schemas: {manifests} Kubernetes objects checked against Kubernetes {version} and reference CRDs")
    failures = [str(finding) for finding in findings]
    failures += _platform_checks(rendering, version)
    failures += _platform_lint(rendering)

    environment = str(rendering.outputs.get("environment") or "dev")
    started = time.perf_counter()
    verdicts = run_policies(rendering, environment)
    progress(f"ran the policy pack in {time.perf_counter() - started:.2f}s")
    counts = Counter(verdict.level for verdict in verdicts)
    print(
        f"policies ({environment}): {counts['mandatory']} mandatory violation(s), "
        f"{counts['advisory']} advisory, {counts['exempt']} exempt with a reason"
    )
    for verdict in verdicts:
        if not verdict.blocking:
            print(f"  - {verdict}")
    failures += [str(verdict) for verdict in blocking(verdicts)]

    if args.no_scan:
        print("security scan: skipped (--no-scan)")
    else:
        failures += _security_scan(rendering, project_dir)

    if failures:
        print(f"FAILED: {len(failures)} finding(s)")
        for failure in failures:
            print(f"  - {failure}")
        return EXIT_FAILED
    print("OK: no findings")
    return EXIT_OK


def _platform_checks(rendering, version: str) -> list[str]:
    from datetime import date

    from mlops.offline.platform_checks import platform_checks

    checks = platform_checks(rendering, version, date.today())
    warnings = [check for check in checks if check.severity == "warning"]
    print(f"platform: {len(checks) - len(warnings)} failure(s), {len(warnings)} warning(s)")
    for check in warnings:
        print(f"  - warning {check}")
    return [str(check) for check in checks if check.severity == "failure"]


def _platform_lint(rendering) -> list[str]:
    import shutil

    from mlops.offline.lint import RULES, lint_rendering

    started = time.perf_counter()
    findings = lint_rendering(rendering)
    progress(f"linted the render in {time.perf_counter() - started:.2f}s")
    skipped = "" if shutil.which("promtool") else " (promql skipped: promtool not on PATH)"
    print(f"platform lint ({', '.join(RULES)}): {len(findings)} finding(s){skipped}")
    return [str(finding) for finding in findings]


def _security_scan(rendering, project_dir: Path) -> list[str]:
    from mlops.offline.security_scan import scan_rendering

    started = time.perf_counter()
    scan = scan_rendering(rendering, project_dir)
    progress(f"scanned manifests with checkov in {time.perf_counter() - started:.2f}s")
    print(
        f"security scan: checkov {scan.checkov_version}: {scan.passed} passed, {len(scan.failed)} failed, "
        f"{len(scan.skipped)} skipped with a reason"
    )
    return [f"checkov {check}" for check in scan.failed]


def command_diff(args: argparse.Namespace) -> int:
    from mlops.offline.diff import diff_renderings
    from mlops.offline.gitref import render_at_ref
    from mlops.offline.render import render

    project_dir = find_project_dir(Path(args.project_dir).resolve())
    base = render_at_ref(project_dir, args.base, args.stack)
    started = time.perf_counter()
    head = render(project_dir, args.stack, parse_overrides(args.config or []), processes=args.processes).document()
    progress(f"rendered working tree in {time.perf_counter() - started:.2f}s")
    result = diff_renderings(base, head)
    print(result.to_json() if args.format == "json" else result.to_markdown(), end="")
    return EXIT_FAILED if args.exit_code and result.changed else EXIT_OK


def _stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--config",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value as `pulumi config set --path` would, e.g. mlops:cloud=gcp "
        "or mlops:nodePools[1].maxSize=6 (repeatable)",
    )
    parser.add_argument("--project-dir", default=".", help="project directory (default: the one containing Pulumi.yaml)")
    parser.add_argument(
        "--processes",
        type=_positive_int,
        metavar="N",
        help="split the models across N processes (default: one per core once a stack declares enough models "
        "to pay for it, mlops.offline.render.SPLIT_MIN_MODELS); the rendering is the same",
    )


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes, 1 or more (got {text!r})")
    return int(text)


def register(commands: argparse._SubParsersAction) -> None:
    render_parser = commands.add_parser(
        "render", help="run the Pulumi program under mocks and write the desired state", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _stack_arguments(render_parser)
    render_parser.add_argument("--out", help="output directory (default: build/render/<stack>)")
    render_parser.set_defaults(func=command_render)

    validate_parser = commands.add_parser(
        "validate", help="render, then check schemas, CRDs, chart values and policies", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _stack_arguments(validate_parser)
    validate_parser.add_argument("--reference", help="reference data dir (default: the project's reference/ or $MLOPS_REFERENCE_DIR)")
    validate_parser.add_argument("--no-scan", action="store_true", help="skip the checkov scan of the rendered manifests")
    validate_parser.set_defaults(func=command_validate)

    diff_parser = commands.add_parser(
        "diff", help="structural diff of a stack between a git ref and the working tree", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _stack_arguments(diff_parser)
    diff_parser.add_argument("--base", required=True, help="git ref to compare against, e.g. origin/main")
    diff_parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    diff_parser.add_argument("--exit-code", action="store_true", help="exit 1 when the stack changed")
    diff_parser.set_defaults(func=command_diff)
