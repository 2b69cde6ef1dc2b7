"""The floor under `mlops render`: the bare Pulumi SDK registering the same resources.

A rendering records every resource the program registered: type, name, parent, inputs as the
provider receives them, dependsOn and provider. The floor replays exactly that with the SDK's
generic classes (`CustomResource`, `ProviderResource`, `ComponentResource`), under the same mocks
and mock monitor and with the same garbage-collection policy, so what the program costs above the
floor is the program itself: typed provider classes, Output plumbing, our components' logic.

The typed floor replays the same resources again, each Kubernetes object with pulumi_kubernetes'
typed class for its kind (`k8s.apiextensions.CustomResource` for custom resources), from a flat
loop: what the program's typed provider classes cost before any of its own code or call depth.

    .venv/bin/python benchmarks/render_floor.py [--stack prod] [--models 500] [--cpu]

prints the render time, the floor time, the typed floor time and the ratios, measured side by side
in one process after a warm-up render has imported everything they need.
"""

from __future__ import annotations

import argparse
import contextvars
import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await
from pulumi_kubernetes._tables import CAMEL_TO_SNAKE_CASE_TABLE

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from mlops.offline.mocks import PlaceholderMocks  # noqa: E402
from mlops.offline.render import RecordingMonitor, Rendering, RenderedResource, garbage_collection_paused, render  # noqa: E402
from mlops.stackfiles import ProjectFiles  # noqa: E402


def model_copies(stack: str, models: int) -> dict[str, str]:
    """`models` copies of the stack's first declared model under new names, as a config override."""
    template = ProjectFiles(PROJECT_DIR).raw_stack_config(stack)["mlops:models"][0]
    return {"mlops:models": json.dumps([{**template, "name": f"{template['name']}-{i:04d}"} for i in range(models)])}


def registration_order(resources: list[RenderedResource]) -> list[RenderedResource]:
    """Parents, dependencies and providers before the resources that name them."""
    by_urn = {r.urn: r for r in resources}
    ordered: list[RenderedResource] = []
    placed: set[str] = set()

    def place(resource: RenderedResource) -> None:
        if resource.urn in placed:
            return
        placed.add(resource.urn)
        for urn in (resource.parent, resource.options.get("provider"), *resource.options.get("dependsOn", [])):
            if urn in by_urn:
                place(by_urn[urn])
        ordered.append(resource)

    for resource in resources:
        place(resource)
    return ordered


def replay(resources: list[RenderedResource], *, typed: bool = False) -> None:
    """Register every resource again, with the SDK's generic resource classes only (`typed`: each
    Kubernetes object with pulumi_kubernetes' class for its kind)."""
    registered: dict[str, pulumi.Resource] = {}
    for resource in registration_order(resources):
        opts = pulumi.ResourceOptions(
            parent=registered.get(resource.parent or ""),
            depends_on=[registered[urn] for urn in resource.options.get("dependsOn", []) if urn in registered],
            provider=registered.get(resource.options.get("provider") or ""),  # type: ignore[arg-type]
            protect=resource.options.get("protect"),
            retain_on_delete=resource.options.get("retainOnDelete"),
            ignore_changes=resource.options.get("ignoreChanges") or None,
        )
        if resource.type.startswith("pulumi:providers:"):
            registered[resource.urn] = pulumi.ProviderResource(resource.type.split(":")[2], resource.name, dict(resource.inputs), opts)
        elif typed and resource.is_manifest:
            registered[resource.urn] = typed_kubernetes_object(resource, opts)
        elif resource.custom:
            registered[resource.urn] = pulumi.CustomResource(resource.type, resource.name, dict(resource.inputs), opts)
        else:
            component = pulumi.ComponentResource(resource.type, resource.name, None, opts)
            component.register_outputs({})
            registered[resource.urn] = component


def typed_kubernetes_object(resource: RenderedResource, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """The object declared with pulumi_kubernetes' class for its kind, as a program declares it."""
    group_version, kind = resource.type.removeprefix("kubernetes:").split(":")
    group, _, version = group_version.rpartition("/")
    body = {key: value for key, value in resource.inputs.items() if key not in ("apiVersion", "kind")}
    try:
        # pulumi_kubernetes names a group's module after its first label: rbac.authorization.k8s.io -> rbac.
        kind_class = getattr(importlib.import_module(f"pulumi_kubernetes.{group.split('.')[0]}.{version}"), kind)
    except (ImportError, AttributeError):
        return k8s.apiextensions.CustomResource(resource.name, api_version=group_version, kind=kind, opts=opts, **body)
    return kind_class(resource.name, opts=opts, **{CAMEL_TO_SNAKE_CASE_TABLE.get(key, key): value for key, value in body.items()})


def floor(rendering: Rendering, *, typed: bool = False, clock: Callable[[], float] = time.perf_counter) -> tuple[float, int]:
    """Seconds the bare SDK takes to register `rendering`'s resources, and how many it registered."""

    def run() -> int:
        settings.ROOT.set(None)
        monitor = RecordingMonitor(PlaceholderMocks())
        pulumi_mocks.set_mocks(monitor.mocks, project=rendering.project, stack=rendering.stack, preview=False, monitor=monitor)
        _sync_await(run_pulumi_func(lambda: replay(rendering.resources, typed=typed)))
        return len(monitor.recorded)

    started = clock()
    with garbage_collection_paused():
        count = contextvars.copy_context().run(run)
    return clock() - started, count


def measure(stack: str, models: int, clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    # One pause around both, as the `mlops` command runs: a collection the render's heap triggers
    # once the collector is back on would otherwise be charged to whichever side runs next.
    with garbage_collection_paused():
        render(PROJECT_DIR, stack, model_copies(stack, 1), processes=1)  # imports every module both sides need
        started = clock()
        rendering = render(PROJECT_DIR, stack, model_copies(stack, models), processes=1)
        render_s = clock() - started
        floor_s, registered = floor(rendering, clock=clock)
        typed_s, typed_registered = floor(rendering, typed=True, clock=clock)
    if registered != len(rendering.resources) or typed_registered != len(rendering.resources):
        raise SystemExit(f"the floors registered {registered} and {typed_registered} resources, the render {len(rendering.resources)}")
    return {"models": models, "resources": len(rendering.resources), "render_s": render_s, "floor_s": floor_s, "typed_s": typed_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument(
        "--cpu", action="store_true", help="CPU seconds of this process, not wall time: steadier when other work shares the cores"
    )
    args = parser.parse_args()
    row = measure(args.stack, args.models, time.process_time if args.cpu else time.perf_counter)
    print(f"{'models':>6} {'resources':>9} {'render s':>9} {'floor s':>8} {'ratio':>6} {'typed floor s':>13} {'typed/floor':>11} {'render/typed':>12}")
    print(
        f"{row['models']:>6} {row['resources']:>9} {row['render_s']:>9.2f} {row['floor_s']:>8.2f} "
        f"{row['render_s'] / row['floor_s']:>6.2f} {row['typed_s']:>13.2f} {row['typed_s'] / row['floor_s']:>11.2f} "
        f"{row['render_s'] / row['typed_s']:>12.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
