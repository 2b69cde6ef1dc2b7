"""Security scan of the rendered Kubernetes manifests with checkov.

checkov pins `packaging<24` among ~60 dependencies, which the IaC virtualenv should not be bent
to, so it lives in its own virtualenv (`.venv-checkov`, or `$MLOPS_CHECKOV` naming the executable)
and runs as a subprocess over a directory of manifests, one YAML file per object.

A check that does not apply to an object is skipped where the object is built, with the reason:
annotation `checkov.io/skip<N>: CKV_K8S_<id>=<reason>` (see `components.workloads.skip_annotations`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops.offline.render import Rendering

CHECKOV_ENV = "MLOPS_CHECKOV"
CHECKOV_VENV = ".venv-checkov"


class ScannerUnavailable(RuntimeError):
    """checkov is not installed where the platform looks for it."""


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    check_name: str
    resource: str
    reason: str = ""

    def __str__(self) -> str:
        suffix = f" (skipped: {self.reason})" if self.reason else ""
        return f"{self.check_id} {self.resource}: {self.check_name}{suffix}"


@dataclass(frozen=True)
class ScanResult:
    passed: int
    failed: list[CheckResult] = field(default_factory=list)
    skipped: list[CheckResult] = field(default_factory=list)
    checkov_version: str = ""

    def to_markdown(self) -> str:
        lines = [f"checkov {self.checkov_version}: {self.passed} passed, {len(self.failed)} failed, {len(self.skipped)} skipped with a reason"]
        lines += [f"- :x: `{c.check_id}` {c.resource}: {c.check_name}" for c in self.failed]
        return "\n".join(lines) + "\n"


def checkov_executable(project_dir: Path) -> Path:
    """`$MLOPS_CHECKOV`, else `<project>/.venv-checkov/bin/checkov`, else `checkov` on PATH."""
    configured = os.environ.get(CHECKOV_ENV)
    candidates = [Path(configured)] if configured else [project_dir / CHECKOV_VENV / "bin" / "checkov"]
    on_path = shutil.which("checkov")
    if on_path and not configured:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ScannerUnavailable(
        f"checkov not found (looked at {', '.join(str(c) for c in candidates)}); install it with "
        f"`python3 -m venv {CHECKOV_VENV} && {CHECKOV_VENV}/bin/pip install checkov` or set {CHECKOV_ENV}"
    )


def scan_manifests(manifests: list[dict[str, Any]], checkov: Path) -> ScanResult:
    with tempfile.TemporaryDirectory(prefix="mlops-checkov-") as scratch:
        root = Path(scratch)
        for index, manifest in enumerate(manifests):
            (root / f"{index:04d}-{manifest.get('kind', 'object').lower()}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=True))
        completed = subprocess.run(
            [str(checkov), "--directory", str(root), "--framework", "kubernetes", "--output", "json", "--soft-fail", "--skip-download"],
            capture_output=True,
            text=True,
            # No telemetry or policy download: the scan is offline and reproducible.
            env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_EXPERIMENTAL_IMAGE_REFERENCING": "False"},
        )
    if completed.returncode != 0:
        raise RuntimeError(f"checkov failed (exit {completed.returncode}): {completed.stderr.strip()[-2000:]}")
    return parse_report(json.loads(completed.stdout or "{}"))


def parse_report(report: Any) -> ScanResult:
    """checkov's JSON: one dict per framework (a list when several ran); empty when nothing scanned."""
    reports = report if isinstance(report, list) else [report]
    passed, failed, skipped, version = 0, [], [], ""
    for item in reports:
        results = item.get("results") or {}
        summary = item.get("summary") or {}
        passed += int(summary.get("passed", 0))
        version = summary.get("checkov_version", version)
        failed += [_check(c) for c in results.get("failed_checks") or []]
        skipped += [_check(c, c.get("check_result", {}).get("suppress_comment", "")) for c in results.get("skipped_checks") or []]
    key = lambda c: (c.resource, c.check_id)  # noqa: E731 - sort key
    return ScanResult(passed, sorted(failed, key=key), sorted(skipped, key=key), version)


def _check(raw: dict[str, Any], reason: str = "") -> CheckResult:
    return CheckResult(str(raw.get("check_id")), str(raw.get("check_name")), str(raw.get("resource")), reason)


def scan_rendering(rendering: Rendering, project_dir: Path) -> ScanResult:
    return scan_manifests([manifest for _, manifest in rendering.manifests()], checkov_executable(project_dir))
