"""The `mlops` command: render, validate and diff stacks offline, and operate model deployments.

Results go to stdout, progress and timing to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1  # validation failures, or changes found with `diff --exit-code`
EXIT_BAD_INPUT = 2  # invalid stack config, unknown stack, bad arguments, unreadable git ref

EPILOG = """exit codes:
  0  success (validate: no failures; diff: computed)
  1  validate found failures (schemas, mandatory policies, checkov); diff --exit-code found changes
  2  bad input: invalid stack config (one line per problem), unknown stack, bad --config, bad git ref
"""


def find_project_dir(start: Path) -> Path:
    for candidate in (start, *start.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise SystemExit(f"mlops: no Pulumi.yaml in {start} or its parents; run inside the project")


def default_reference_dir(project_dir: Path) -> Path:
    return Path(os.environ.get("MLOPS_REFERENCE_DIR", project_dir.parent / "shared" / "reference"))


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _render(args: argparse.Namespace):
    from mlops.render import render
    from mlops.stackfiles import parse_overrides

    project_dir = find_project_dir(Path(args.project_dir).resolve())
    started = time.perf_counter()
    rendering = render(project_dir, args.stack, parse_overrides(args.config or []))
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
    return "\n".join(lines)


def command_render(args: argparse.Namespace) -> int:
    from mlops.render import write_rendering

    project_dir, rendering = _render(args)
    out_dir = Path(args.out) if args.out else project_dir / "build" / "render" / args.stack
    written = write_rendering(rendering, out_dir)
    print(_summary(rendering))
    print(f"wrote {out_dir / 'state.json'} and {len(written) - 1} manifests under {out_dir / 'manifests'}")
    return EXIT_OK


def command_validate(args: argparse.Namespace) -> int:
    from mlops.policy_runner import blocking, run_policies
    from mlops.validate import ReferenceData, validate_rendering

    project_dir, rendering = _render(args)
    reference = ReferenceData(
        Path(args.reference) if args.reference else default_reference_dir(project_dir),
        cache_dir=project_dir / "build" / "cache",
    )
    kubernetes_version = _kubernetes_version(rendering)
    started = time.perf_counter()
    findings = validate_rendering(rendering, reference, kubernetes_version)
    progress(f"validated schemas in {time.perf_counter() - started:.2f}s")
    print(_summary(rendering))
    manifests = sum(1 for r in rendering.resources if r.is_manifest)
    print(f"schemas: {manifests} Kubernetes objects checked against Kubernetes {kubernetes_version} and reference CRDs")
    failures = [str(finding) for finding in findings]

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


def _security_scan(rendering, project_dir: Path) -> list[str]:
    from mlops.security_scan import scan_rendering

    started = time.perf_counter()
    scan = scan_rendering(rendering, project_dir)
    progress(f"scanned manifests with checkov in {time.perf_counter() - started:.2f}s")
    print(
        f"security scan: checkov {scan.checkov_version}: {scan.passed} passed, {len(scan.failed)} failed, "
        f"{len(scan.skipped)} skipped with a reason"
    )
    return [f"checkov {check}" for check in scan.failed]


def _kubernetes_version(rendering) -> str:
    cluster = json.loads(rendering.config.get("mlops:cluster", "{}"))
    return str(cluster.get("kubernetesVersion", "1.33"))


def command_diff(args: argparse.Namespace) -> int:
    from mlops.diff import diff_renderings
    from mlops.render import render
    from mlops.stackfiles import parse_overrides

    project_dir = find_project_dir(Path(args.project_dir).resolve())
    base = render_at_ref(project_dir, args.base, args.stack)
    started = time.perf_counter()
    head = render(project_dir, args.stack, parse_overrides(args.config or [])).document()
    progress(f"rendered working tree in {time.perf_counter() - started:.2f}s")
    result = diff_renderings(base, head)
    print(result.to_json() if args.format == "json" else result.to_markdown(), end="")
    return EXIT_FAILED if args.exit_code and result.changed else EXIT_OK


class GitRefError(ValueError):
    """A --base ref that cannot be checked out or rendered."""


def render_at_ref(project_dir: Path, ref: str, stack: str) -> dict | None:
    """Render `stack` as of git `ref` in a temporary worktree; None if the stack did not exist then."""
    git_root = Path(_git(project_dir, "rev-parse", "--show-toplevel").strip())
    subdir = project_dir.resolve().relative_to(git_root.resolve())
    commit = _git(project_dir, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlops-diff-") as scratch:
        worktree = Path(scratch) / "base"
        _git(project_dir, "worktree", "add", "--detach", str(worktree), commit)
        try:
            base_project = worktree / subdir
            if not (base_project / f"Pulumi.{stack}.yaml").is_file():
                return None
            out_dir = Path(scratch) / "render"
            env = {**os.environ, "PYTHONPATH": str(base_project), "MLOPS_REFERENCE_DIR": str(default_reference_dir(project_dir))}
            completed = subprocess.run(
                [sys.executable, "-m", "mlops", "render", "--stack", stack, "--out", str(out_dir)],
                cwd=base_project,
                env=env,
                capture_output=True,
                text=True,
            )
            if completed.returncode != 0:
                raise GitRefError(f"rendering {stack} at {ref} ({commit[:12]}) failed:\n{completed.stderr.strip()}")
            progress(f"rendered {ref} ({commit[:12]}) in {time.perf_counter() - started:.2f}s")
            return json.loads((out_dir / "state.json").read_text())
        finally:
            _git(project_dir, "worktree", "remove", "--force", str(worktree))
            shutil.rmtree(worktree, ignore_errors=True)


def _git(cwd: Path, *args: str) -> str:
    completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if completed.returncode != 0:
        raise GitRefError(f"git {' '.join(args)}: {completed.stderr.strip()}")
    return completed.stdout


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


def build_parser() -> argparse.ArgumentParser:
    from mlops import canary, models_cli, policy_config, preview, rollback

    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Render, validate and diff the MLOps platform's Pulumi stacks offline; operate model deployments.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

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
    validate_parser.add_argument("--reference", help="reference data dir (default: ../shared/reference or $MLOPS_REFERENCE_DIR)")
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

    # Listed for --help; `main` hands `mlops drift ...` to the drift engine's own parser, so that
    # numpy/scipy/pandas load only for that command.
    commands.add_parser("drift", help="drift report between a reference and a current Parquet/CSV file", add_help=False)

    for module in (preview, policy_config, models_cli, canary, rollback):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from mlops.security_scan import ScannerUnavailable
    from mlops.stackfiles import StackFileError
    from stacks.config import ConfigError

    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["drift"]:
        from monitoring.drift.cli import main as drift_main

        return drift_main(arguments[1:])
    args = build_parser().parse_args(arguments)
    try:
        return args.func(args)
    except ConfigError as error:
        print(f"mlops: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (StackFileError, GitRefError, FileNotFoundError, ScannerUnavailable) as error:
        print(f"mlops: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
