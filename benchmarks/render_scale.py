"""Render and validate a stack with 1, 10, 100 and 500 model deployments, beside the SDK floor.

Per size, in a fresh process each (so peak memory is that size's alone), after a warm-up render
has imported everything:
- render: the program under mocks in one process; validate: schemas and CRDs of that rendering;
- floor: the bare SDK registering the same resources (benchmarks/render_floor.py), same process;
- ratio: render / floor; validate %: validate / render;
- split: render + validate with the models split across every usable core, as `mlops validate`
  does for large stacks (cold: the fork server imports the program, as a CLI run would);
- peak MiB: the largest resident size of the measuring process and of its split-render children.
The models are copies of the stack's first declared model under new names.

Targets (issue 18): render within 1.3x of the floor at 500 models; validate under 5 % of render;
500 models rendered and validated split in under 10 s on 2 free cores; peak memory at most 1.5x the
single-process figure before this work (425 MiB at 500 models).

    .venv/bin/python benchmarks/render_scale.py [--stack prod] [--sizes 1,10,100,500]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))


def measure(stack: str, models: int) -> dict[str, float]:
    """Runs in the child process."""
    from render_floor import floor, model_copies

    from mlops.offline.render import render
    from mlops.offline.validate import ReferenceData, kubernetes_version, validate_rendering
    from mlops.project import default_reference_dir, garbage_collection_paused

    reference = ReferenceData(default_reference_dir(PROJECT_DIR), PROJECT_DIR / "build" / "cache")
    overrides = model_copies(stack, models)
    cores = len(os.sched_getaffinity(0))
    with garbage_collection_paused():  # as the `mlops` command runs
        warm = render(PROJECT_DIR, stack, model_copies(stack, 1), processes=1)
        validate_rendering(warm, reference, kubernetes_version(warm))
        started = time.perf_counter()
        rendering = render(PROJECT_DIR, stack, overrides, processes=1)
        rendered = time.perf_counter()
        findings = validate_rendering(rendering, reference, kubernetes_version(rendering))
        validated = time.perf_counter()
        floor_s, _ = floor(rendering)
        split_started = time.perf_counter()
        split = render(PROJECT_DIR, stack, overrides, processes=cores)
        validate_rendering(split, reference, kubernetes_version(split))
        split_s = time.perf_counter() - split_started
    if split.document() != rendering.document():
        raise SystemExit("the split rendering differs from the single-process one")
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {
        "models": models,
        "resources": len(rendering.resources),
        "render_s": rendered - started,
        "validate_s": validated - rendered,
        "floor_s": floor_s,
        "split_s": split_s,
        "cores": cores,
        "findings": len(findings),
        "peak_rss_mib": peak / 1024,
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
    print(
        f"{'models':>6} {'resources':>9} {'render s':>9} {'validate s':>10} {'total s':>8} {'floor s':>8} "
        f"{'ratio':>6} {'valid. %':>8} {'split s':>8} {'peak MiB':>9} findings"
    )
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
            f"{total:>8.2f} {row['floor_s']:>8.2f} {row['render_s'] / row['floor_s']:>6.2f} "
            f"{100 * row['validate_s'] / row['render_s']:>8.1f} {row['split_s']:>8.2f} {row['peak_rss_mib']:>9.0f} "
            f"{row['findings']}",
            flush=True,
        )
    print(f"split: {row['cores']} processes; machine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
