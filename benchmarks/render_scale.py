"""Render and validate a stack with 1, 10, 100 and 500 model deployments, beside the SDK floor.

Per size, in a fresh process each (so peak memory is that size's alone), after a warm-up render
has imported everything:
- render: the program under mocks in one process; validate: schemas and CRDs of that rendering;
- floor: the bare SDK registering the same resources (benchmarks/render_floor.py), same process;
- ratio: render / floor; validate %: validate / render;
- peak MiB: the largest resident size of that process by the end of validate;
- split: in a fresh process, as `mlops validate` runs on a large stack: imports, the render split
  across every usable core (forked after the program's imports), validate; split MiB: the largest
  resident size of that process and of its forked children.
The models are copies of the stack's first declared model under new names.

Targets (issue 18): render within 1.3x of the floor at 500 models; validate under 5 % of render;
500 models rendered and validated split in under 10 s on 2 free cores; peak memory at most 1.5x the
single-process figure before this work (417 MiB at 500 models, tree c5d2d4f).

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
    """Runs in a child process: render, validate and the floor, one process, after a warm-up."""
    from render_floor import floor, model_copies

    from mlops.offline.render import render
    from mlops.offline.validate import ReferenceData, kubernetes_version, validate_rendering
    from mlops.project import default_reference_dir, garbage_collection_paused

    reference = ReferenceData(default_reference_dir(PROJECT_DIR), PROJECT_DIR / "build" / "cache")
    overrides = model_copies(stack, models)
    with garbage_collection_paused():  # as the `mlops` command runs
        warm = render(PROJECT_DIR, stack, model_copies(stack, 1), processes=1)
        validate_rendering(warm, reference, kubernetes_version(warm))
        started = time.perf_counter()
        rendering = render(PROJECT_DIR, stack, overrides, processes=1)
        rendered = time.perf_counter()
        findings = validate_rendering(rendering, reference, kubernetes_version(rendering))
        validated = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        floor_s, _ = floor(rendering)
    return {
        "models": models,
        "resources": len(rendering.resources),
        "render_s": rendered - started,
        "validate_s": validated - rendered,
        "floor_s": floor_s,
        "findings": len(findings),
        "peak_rss_mib": peak / 1024,
    }


def measure_split(stack: str, models: int) -> dict[str, float]:
    """Runs in a fresh child process, as `mlops validate` would: imports, split render, validate."""
    started = time.perf_counter()
    from render_floor import model_copies

    from mlops.offline.render import render
    from mlops.offline.validate import ReferenceData, kubernetes_version, validate_rendering
    from mlops.project import default_reference_dir, garbage_collection_paused

    processes = len(os.sched_getaffinity(0))
    with garbage_collection_paused():
        rendering = render(PROJECT_DIR, stack, model_copies(stack, models), processes=processes)
        validate_rendering(rendering, ReferenceData(default_reference_dir(PROJECT_DIR), PROJECT_DIR / "build" / "cache"), kubernetes_version(rendering))
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {"split_s": time.perf_counter() - started, "processes": processes, "split_peak_mib": peak / 1024}


def _child(flag: str, stack: str, size: int) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--stack", stack, flag, str(size)], capture_output=True, text=True, cwd=PROJECT_DIR
    )
    if completed.returncode != 0:
        raise SystemExit(completed.stderr)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--sizes", default="1,10,100,500")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-split", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.stack, args.child)))
        return 0
    if args.child_split is not None:
        print(json.dumps(measure_split(args.stack, args.child_split)))
        return 0
    print(
        f"{'models':>6} {'resources':>9} {'render s':>9} {'validate s':>10} {'total s':>8} {'floor s':>8} "
        f"{'ratio':>6} {'valid. %':>8} {'peak MiB':>9} {'split s':>8} {'split MiB':>9} findings"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        row = _child("--child", args.stack, size)
        split = _child("--child-split", args.stack, size)
        total = row["render_s"] + row["validate_s"]
        print(
            f"{row['models']:>6} {row['resources']:>9} {row['render_s']:>9.2f} {row['validate_s']:>10.2f} "
            f"{total:>8.2f} {row['floor_s']:>8.2f} {row['render_s'] / row['floor_s']:>6.2f} "
            f"{100 * row['validate_s'] / row['render_s']:>8.1f} {row['peak_rss_mib']:>9.0f} {split['split_s']:>8.2f} "
            f"{split['split_peak_mib']:>9.0f} {row['findings']}",
            flush=True,
        )
    print(
        f"split: {split['processes']} processes, cold (imports included, as `mlops validate` runs); "
        f"machine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
