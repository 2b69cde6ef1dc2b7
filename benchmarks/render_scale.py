"""Render (and validate) a stack with 1, 10, 100 and 500 model deployments; print time and memory.

Each size runs in a fresh subprocess so peak memory (ru_maxrss) is that size's alone. The models
are copies of the stack's first declared model under new names, so every one renders the full
per-model set (InferenceService, monitors, rules, dashboard, drift CronJob, service account).

Target (issue 2): 500 models render and validate in under 10 s on a 2-core machine, and the time
per model does not grow with the number of models.

    .venv/bin/python benchmarks/render_scale.py [--stack prod] [--sizes 1,10,100,500]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]


def measure(stack: str, models: int) -> dict[str, float]:
    """Runs in the child: render + validate `models` copies of the stack's first model."""
    from mlops.offline.render import render
    from mlops.stackfiles import ProjectFiles
    from mlops.offline.validate import ReferenceData, validate_rendering

    declared = ProjectFiles(PROJECT_DIR).raw_stack_config(stack)["mlops:models"]
    template = declared[0]
    copies = [{**template, "name": f"{template['name']}-{i:04d}"} for i in range(models)]
    started = time.perf_counter()
    rendering = render(PROJECT_DIR, stack, {"mlops:models": json.dumps(copies)})
    rendered = time.perf_counter()
    findings = validate_rendering(rendering, ReferenceData(PROJECT_DIR.parent / "shared" / "reference", PROJECT_DIR / "build" / "cache"), "1.33")
    validated = time.perf_counter()
    return {
        "models": models,
        "resources": len(rendering.resources),
        "render_s": rendered - started,
        "validate_s": validated - rendered,
        "findings": len(findings),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--sizes", default="1,10,100,500")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.stack, args.child)))
        return 0
    print(f"{'models':>6} {'resources':>9} {'render s':>9} {'validate s':>10} {'total s':>8} {'ms/model':>9} {'peak MiB':>9} findings")
    for size in (int(s) for s in args.sizes.split(",")):
        completed = subprocess.run(
            [sys.executable, __file__, "--stack", args.stack, "--child", str(size)],
            capture_output=True, text=True, cwd=PROJECT_DIR,
        )
        if completed.returncode != 0:
            print(completed.stderr, file=sys.stderr)
            return 1
        row = json.loads(completed.stdout.strip().splitlines()[-1])
        total = row["render_s"] + row["validate_s"]
        print(
            f"{row['models']:>6} {row['resources']:>9} {row['render_s']:>9.2f} {row['validate_s']:>10.2f} "
            f"{total:>8.2f} {1000 * total / row['models']:>9.1f} {row['peak_rss_mib']:>9.0f} {row['findings']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
