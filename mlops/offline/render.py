"""Run the real Pulumi program under mocks and capture the desired state it declares.

The capture sits where the engine would: a mock monitor records every RegisterResource request
(type, name, parent, inputs exactly as the provider would receive them, and the resource options
that change how the engine treats it), so what is rendered is what `pulumi up` would send.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import math
import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from mlops.offline.mocks import PlaceholderMocks
from mlops.project import garbage_collection_paused
from mlops.stackfiles import ProjectFiles

SECRET = "[secret]"
UNKNOWN = "[unknown]"
# Types the Kubernetes provider turns into objects of its own; everything else under
# `kubernetes:` is one object, rendered as a manifest.
NON_MANIFEST_KUBERNETES = ("kubernetes:index:Provider", "kubernetes:helm.sh/", "kubernetes:yaml/", "kubernetes:kustomize")


@dataclass
class RenderedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": self.inputs,
            "options": self.options,
        }

    @property
    def is_manifest(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:") and not self.type.startswith(NON_MANIFEST_KUBERNETES)


@dataclass
class Rendering:
    project: str
    stack: str
    config: dict[str, str]
    resources: list[RenderedResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "config": self.config,
            "outputs": self.outputs,
            "resources": [r.as_json() for r in self.resources],
        }

    def manifests(self) -> list[tuple[RenderedResource, dict[str, Any]]]:
        return [(r, manifest_of(r)) for r in self.resources if r.is_manifest]

    def by_type(self, type_token: str) -> list[RenderedResource]:
        return [r for r in self.resources if r.type == type_token]


def manifest_of(resource: RenderedResource) -> dict[str, Any]:
    """The Kubernetes object a resource's inputs describe, apiVersion and kind first."""
    group_version, kind = resource.type.removeprefix("kubernetes:").split(":")
    api_version = group_version.removeprefix("core/")
    body = {k: v for k, v in resource.inputs.items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": resource.inputs.get("apiVersion", api_version), "kind": resource.inputs.get("kind", kind), **body}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also keeps every registration request's inputs and options."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.recorded: list[RenderedResource] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recorded.append(_record(request, response.urn))
        return response


def _record(request: Any, urn: str) -> RenderedResource:
    inputs = plain(rpc.deserialize_properties(request.object, keep_unknowns=True))
    options: dict[str, Any] = {
        "protect": bool(request.protect) if request.HasField("protect") else False,
        "retainOnDelete": bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
        "deleteBeforeReplace": bool(request.deleteBeforeReplace),
        "dependsOn": sorted(set(request.dependencies)),
        "provider": _provider_urn(request.provider),
        "ignoreChanges": sorted(request.ignoreChanges),
    }
    if request.transforms:
        # Transforms run inside the engine; a rendering can only show that they are attached.
        options["transforms"] = len(request.transforms)
    return RenderedResource(
        urn=urn,
        type=request.type,
        name=request.name,
        parent=request.parent or None,
        custom=bool(request.custom),
        inputs=inputs,
        options=options,
    )


def _provider_urn(reference: str) -> str | None:
    # Provider references are "<urn>::<id>"; the id is a mock value, the URN is what matters.
    return reference.rsplit("::", 1)[0] if reference else None


def plain(value: Any) -> Any:
    """JSON-ready form of deserialized inputs: secrets hidden, integral floats back to ints."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _masked(value["value"])
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        # The engine's wire format has only doubles: mocks turn 10 into 10.0.
        return int(value) if math.isfinite(value) and value.is_integer() else value
    if isinstance(value, pulumi.Resource):
        return {"resource": getattr(value, "_name", repr(value))}
    if isinstance(value, (pulumi.FileAsset, pulumi.StringAsset, pulumi.RemoteAsset)):
        return {"asset": getattr(value, "path", None) or getattr(value, "uri", None) or "text"}
    if isinstance(value, str) and value == rpc.UNKNOWN:
        return UNKNOWN
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _masked(value: Any) -> Any:
    """A secret keeps its shape (so the object still validates) with every string hidden."""
    if isinstance(value, dict):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    return SECRET if isinstance(value, str) else plain(value)


# Below this many models the foundation and platform, which every shard declares, outweigh the
# models split between processes.
SPLIT_MIN_MODELS = 50


class RenderShardConflict(RuntimeError):
    """Two shards of a split render declared the same URN differently: the split is not sound."""


def render(project_dir: Path, stack: str, overrides: dict[str, str] | None = None, *, processes: int | None = None) -> Rendering:
    """Render `stack` of the project in `project_dir` in a fresh Pulumi runtime context.

    With `processes` > 1 the models are split across forked processes (None: one per usable core
    once the stack declares SPLIT_MIN_MODELS models); the result is the same rendering.
    """
    files = ProjectFiles(project_dir)
    config = files.stack_config(stack, overrides or {})
    if processes is None:
        processes = default_processes(config)
    if processes <= 1:
        return _render_shard(project_dir, files.project_name, stack, config, None)
    return _render_split(project_dir, files.project_name, stack, config, processes)


def default_processes(config: dict[str, str]) -> int:
    try:
        models = len(json.loads(config.get("mlops:models", "[]")))
    except (TypeError, ValueError):
        return 1  # the program reports the malformed value
    return 1 if models < SPLIT_MIN_MODELS else max(1, min(len(os.sched_getaffinity(0)), models))


def _render_shard(project_dir: Path, project: str, stack: str, config: dict[str, str], shard: Any) -> Rendering:
    with garbage_collection_paused():
        return contextvars.copy_context().run(_render_in_context, project_dir, project, stack, config, shard)


def _render_split(project_dir: Path, project: str, stack: str, config: dict[str, str], processes: int) -> Rendering:
    """Each process declares the foundation, the platform and every `processes`-th model; merged by URN.

    This process renders the first share; the others run in processes forked after the program's
    modules are imported: from this process when the SDK has not run in it yet (a CLI command), else
    from a fork server, because once the SDK has run, gRPC's threads (its callback server) make a
    child forked from here crash on its first call.
    """
    from stacks.models import ModelShard

    _program_entry(project_dir)
    if _sdk_has_run:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["stacks.program", __name__])
    else:
        context = multiprocessing.get_context("fork")
    children = []
    for index in range(1, processes):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_shard_in_child, args=(sender, project_dir, project, stack, config, ModelShard(index, processes)), daemon=True
        )
        child.start()
        sender.close()
        children.append((child, receiver))
    shards = [_render_shard(project_dir, project, stack, config, ModelShard(0, processes))]
    for child, receiver in children:
        outcome, value = receiver.recv()
        child.join()
        if outcome == "error":
            raise value
        shards.append(value)
    return merge_shards(shards)


def _shard_in_child(sender: Any, project_dir: Path, project: str, stack: str, config: dict[str, str], shard: Any) -> None:
    try:
        sender.send(("ok", _render_shard(project_dir, project, stack, config, shard)))
    except BaseException as error:  # noqa: BLE001 - handed to the parent, which raises it
        sender.send(("error", error))
    finally:
        sender.close()


def merge_shards(shards: list[Rendering]) -> Rendering:
    """One rendering from the shards of a split render: resources by URN, outputs key by key."""
    by_urn: dict[str, RenderedResource] = {}
    outputs: dict[str, Any] = {}
    for shard in shards:
        for resource in shard.resources:
            seen = by_urn.setdefault(resource.urn, resource)
            if seen != resource:
                raise RenderShardConflict(
                    f"{resource.urn} is declared differently by two shards of the render; the program must declare "
                    "shared resources the same way whatever share of the models a process declares"
                )
        outputs = _merged_outputs(outputs, shard.outputs, "")
    first = shards[0]
    resources = sorted(by_urn.values(), key=lambda r: r.urn)
    return Rendering(project=first.project, stack=first.stack, config=first.config, resources=resources, outputs=outputs)


def _merged_outputs(merged: dict[str, Any], more: dict[str, Any], path: str) -> dict[str, Any]:
    result = dict(merged)
    for key, value in more.items():
        if key not in result or result[key] == value:
            result[key] = value
        elif isinstance(result[key], dict) and isinstance(value, dict):
            result[key] = _merged_outputs(result[key], value, f"{path}{key}.")
        else:
            raise RenderShardConflict(f"stack output {path}{key} differs between two shards of the render")
    return dict(sorted(result.items()))


_sdk_has_run = False


def _render_in_context(project_dir: Path, project: str, stack: str, config: dict[str, str], shard: Any) -> Rendering:
    global _sdk_has_run
    _sdk_has_run = True
    settings.ROOT.set(None)
    monitor = RecordingMonitor(PlaceholderMocks())
    pulumi_mocks.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
    set_all_config(config, secret_keys=[k for k, v in config.items() if v == SECRET])
    program = _program_entry(project_dir)
    # The program declares its resources here, before the event loop runs (as `set_mocks` declares
    # the root stack); the SDK's runner then waits for every registration and raises what the
    # program raised. The SDK records, per resource, every Python frame it was declared under (no
    # switch turns that off): run inside the runner, six event-loop frames deeper, that cost
    # 0.3-0.4 s of CPU in a 500-model render.
    failure: BaseException | None = None
    try:
        if shard is None:
            program()
        else:
            program(shard)
    except BaseException as error:  # noqa: BLE001 - raised again by the runner, after it drained the registrations
        failure = error

    def outcome() -> None:
        if failure is not None:
            raise failure

    _sync_await(run_pulumi_func(outcome))
    outputs = _sync_await(_resolve_outputs(settings.get_root_resource()))
    resources = sorted(monitor.recorded, key=lambda r: r.urn)
    return Rendering(project=project, stack=stack, config=dict(sorted(config.items())), resources=resources, outputs=outputs)


def _program_entry(project_dir: Path) -> Any:
    root = str(project_dir.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("stacks.program").main


async def _resolve_outputs(stack: Any) -> dict[str, Any]:
    resolved = {}
    for key, value in sorted(getattr(stack, "outputs", {}).items()):
        output = pulumi.Output.from_input(value)
        is_secret = await output.is_secret()
        resolved[key] = SECRET if is_secret else plain(await output.future(with_unknowns=True))
    return resolved


def write_rendering(rendering: Rendering, out_dir: Path) -> list[Path]:
    """Write `state.json` and one YAML file per Kubernetes object; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifests_dir = out_dir / "manifests"
    if manifests_dir.exists():
        for stale in sorted(manifests_dir.rglob("*.yaml")):
            stale.unlink()
    state = out_dir / "state.json"
    state.write_text(json.dumps(rendering.document(), indent=2, sort_keys=True) + "\n")
    written = [state]
    for resource, manifest in rendering.manifests():
        metadata = manifest.get("metadata") or {}
        folder = manifests_dir / (metadata.get("namespace") or "_cluster")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{manifest['kind'].lower()}-{metadata.get('name', resource.name)}--{resource.name}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=True))
        written.append(path)
    return written
