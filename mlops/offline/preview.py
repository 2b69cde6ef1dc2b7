"""The offline pull-request preview: one Markdown comment for every stack a change touches.

Per stack: render the base (a git ref) and the head (the working tree), then report the
structural diff (`mlops.offline.diff`), the schema checks of `mlops validate` on the head (when the
reference CRDs and chart defaults are at hand), the policy verdicts (`mlops.offline.policy_runner`), the
checkov scan of the head's manifests (`mlops.offline.security_scan`) and the monthly cost change
(`mlops.offline.cost`). Needs no cloud credentials, so it runs for pull requests from forks.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from mlops.offline.cost import CostDelta, PriceTable, cost_delta
from mlops.offline.diff import RenderDiff, diff_renderings
from mlops.offline.gitref import render_at_ref
from mlops.offline.policy_runner import PolicyFinding, run_policies
from mlops.offline.render import Rendering, render
from mlops.offline.security_scan import ScanResult, scan_rendering
from mlops.project import default_reference_dir, find_project_dir, progress
from mlops.offline.validate import ReferenceData, kubernetes_version, validate_rendering
from mlops.stackfiles import ProjectFiles

COMMENT_MARKER = "<!-- mlops-offline-preview -->"
LEVEL_ICONS = {"mandatory": ":no_entry:", "advisory": ":warning:", "exempt": ":memo:"}


@dataclass(frozen=True)
class StackPreview:
    stack: str
    environment: str
    diff: RenderDiff
    findings: list[PolicyFinding]
    scan: ScanResult | None
    cost: CostDelta
    # Schema findings of `mlops validate`; None when no reference data was found (see `schemas_note`).
    schema_findings: list[str] | None = None
    schemas_note: str = ""

    @property
    def blocking(self) -> bool:
        return any(f.blocking for f in self.findings) or bool(self.scan and self.scan.failed) or bool(self.schema_findings)

    def to_markdown(self) -> str:
        verdict = ":no_entry: blocked" if self.blocking else ":white_check_mark: passes"
        sections = [f"## Stack `{self.stack}` ({self.environment}): {verdict}", "", "### Changes", "", self.diff.to_markdown().strip(), ""]
        sections += ["### Schemas", "", self._schemas_markdown(), ""]
        sections += ["### Policy verdicts", "", _findings_markdown(self.findings), ""]
        sections += ["### Security scan", "", self.scan.to_markdown() if self.scan else "Skipped (--no-scan).\n", ""]
        sections += ["### Cost", "", self.cost.to_markdown(), self.cost.head.to_markdown()]
        return "\n".join(sections)


    def _schemas_markdown(self) -> str:
        if self.schema_findings is None:
            return f"Skipped: {self.schemas_note}\n"
        if not self.schema_findings:
            return f"{self.schemas_note}: no findings.\n"
        return f"{self.schemas_note}: {len(self.schema_findings)} finding(s)\n" + "".join(f"- :x: {f}\n" for f in self.schema_findings)


def _findings_markdown(findings: list[PolicyFinding]) -> str:
    if not findings:
        return "All guardrails pass.\n"
    rows = ["| level | policy | resource | message |", "|---|---|---|---|"]
    for finding in sorted(findings, key=lambda f: (f.level != "mandatory", f.level, f.policy, f.resource)):
        resource = finding.resource.rsplit("::", 1)[-1] if finding.resource else "stack"
        message = finding.message.replace("|", "\\|")
        rows.append(f"| {LEVEL_ICONS[finding.level]} {finding.level} | `{finding.policy}` | `{resource}` | {message} |")
    counts = {level: sum(1 for f in findings if f.level == level) for level in LEVEL_ICONS}
    return "\n".join(rows) + f"\n\n{counts['mandatory']} mandatory, {counts['advisory']} advisory, {counts['exempt']} exempt with a reason.\n"


def schema_check(project_dir: Path, rendering: Rendering) -> tuple[list[str] | None, str]:
    """`mlops validate`'s schema findings on `rendering`, or None with the reason it could not run."""
    reference_dir = default_reference_dir(project_dir)
    if not reference_dir.is_dir():
        return None, f"no reference CRDs and chart defaults at {reference_dir} (set MLOPS_REFERENCE_DIR)"
    version = kubernetes_version(rendering)
    findings = validate_rendering(rendering, ReferenceData(reference_dir, cache_dir=project_dir / "build" / "cache"), version)
    objects = sum(1 for r in rendering.resources if r.is_manifest)
    return [str(f) for f in findings], f"{objects} Kubernetes objects checked against Kubernetes {version}, the reference CRDs and chart defaults"


def preview_stack(project_dir: Path, stack: str, base_ref: str, prices: PriceTable, *, scan: bool = True) -> StackPreview:
    base = render_at_ref(project_dir, base_ref, stack)
    head = render(project_dir, stack)
    environment = head.outputs.get("environment") or head.config.get("mlops:environment", "dev")
    head_document = head.document()
    schema_findings, schemas_note = schema_check(project_dir, head)
    return StackPreview(
        stack=stack,
        environment=str(environment),
        diff=diff_renderings(base, head_document),
        findings=run_policies(head, str(environment)),
        scan=scan_rendering(head, project_dir) if scan else None,
        cost=cost_delta(base, head_document, prices),
        schema_findings=schema_findings,
        schemas_note=schemas_note,
    )


def comment_markdown(previews: list[StackPreview], base_ref: str) -> str:
    blocked = [p.stack for p in previews if p.blocking]
    headline = f"blocked by {', '.join(f'`{s}`' for s in blocked)}" if blocked else "every stack passes its guardrails"
    parts = [COMMENT_MARKER, f"# Offline preview against `{base_ref}`: {headline}", ""]
    parts += [preview.to_markdown() for preview in previews]
    return "\n".join(parts)


def command_preview(args: argparse.Namespace) -> int:
    project_dir = find_project_dir(Path(args.project_dir).resolve())
    stacks = args.stack or ProjectFiles(project_dir).stack_names()
    prices = PriceTable.load()
    previews = []
    for stack in stacks:
        progress(f"previewing stack {stack} against {args.base}")
        previews.append(preview_stack(project_dir, stack, args.base, prices, scan=not args.no_scan))
    text = comment_markdown(previews, args.base)
    if args.out:
        Path(args.out).write_text(text)
        progress(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 1 if any(p.blocking for p in previews) else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="offline pull-request preview: diff, policy verdicts, checkov and cost per stack, as one Markdown comment",
    )
    parser.add_argument("--base", required=True, help="git ref of the base, e.g. origin/main")
    parser.add_argument("--stack", action="append", help="stack to preview (repeatable; default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--out", help="write the Markdown here instead of stdout")
    parser.add_argument("--no-scan", action="store_true", help="skip the checkov scan")
    parser.add_argument("--project-dir", default=".", help="project directory (default: the one containing Pulumi.yaml)")
    parser.set_defaults(func=command_preview)
